output "vpc_id" {
  value = module.network.vpc_id
}

output "alb_dns_name" {
  value = aws_lb.api.dns_name
}

output "api_url" {
  value = "https://${var.domain_name}"
}

output "ecs_cluster" {
  value = aws_ecs_cluster.sentinel.name
}

output "ecs_service" {
  value = aws_ecs_service.api.name
}

output "task_family" {
  value = aws_ecs_task_definition.api.family
}

output "blue_target_group_arn" {
  value = aws_lb_target_group.blue.arn
}

output "green_target_group_arn" {
  value = aws_lb_target_group.green.arn
}

output "listener_arn" {
  value = aws_lb_listener.https.arn
}

output "db_endpoint" {
  value = module.database.endpoint
}

output "db_secret_arn" {
  description = "Secrets Manager secret holding the database password (managed by RDS)."
  value       = module.database.master_secret_arn
  sensitive   = true
}

output "redis_endpoint" {
  value = aws_elasticache_replication_group.sentinel.primary_endpoint_address
}

output "redis_auth_token" {
  value     = random_password.redis.result
  sensitive = true
}

output "alarm_names" {
  description = "The alarms the console's deploy bake watches (Environment.alarm_names): the per-colour unhealthy-host alarms through their composite."
  value = concat(
    [for key, alarm in aws_cloudwatch_metric_alarm.bake : alarm.alarm_name if !startswith(key, "api-unhealthy-hosts-")],
    [aws_cloudwatch_composite_alarm.unhealthy_hosts.alarm_name],
  )
}

output "backup_vault_arn" {
  value = aws_backup_vault.main.arn
}
