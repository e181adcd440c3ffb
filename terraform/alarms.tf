# The alarms a deploy's bake watches: any of them in ALARM rolls the deploy back. Their names
# are an output (alarm_names) so the console's environment can be configured from it.
locals {
  bake_alarms = {
    "api-5xx" = {
      namespace   = "AWS/ApplicationELB"
      metric      = "HTTPCode_Target_5XX_Count"
      statistic   = "Sum"
      threshold   = 10
      dimensions  = { LoadBalancer = aws_lb.api.arn_suffix }
      description = "More than 10 target 5xx responses a minute."
    }
    "api-latency-p99" = {
      namespace   = "AWS/ApplicationELB"
      metric      = "TargetResponseTime"
      statistic   = "Maximum"
      threshold   = 2
      dimensions  = { LoadBalancer = aws_lb.api.arn_suffix }
      description = "Slowest response above 2 seconds."
    }
    "api-unhealthy-hosts" = {
      namespace   = "AWS/ApplicationELB"
      metric      = "UnHealthyHostCount"
      statistic   = "Maximum"
      threshold   = 0
      dimensions  = { LoadBalancer = aws_lb.api.arn_suffix, TargetGroup = aws_lb_target_group.blue.arn_suffix }
      description = "An API task fails its health check."
    }
    "db-cpu" = {
      namespace   = "AWS/RDS"
      metric      = "CPUUtilization"
      statistic   = "Average"
      threshold   = 85
      dimensions  = { DBInstanceIdentifier = module.database.identifier }
      description = "Database CPU above 85%."
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "bake" {
  for_each = local.bake_alarms

  alarm_name          = "${local.name}-${each.key}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  statistic           = each.value.statistic
  dimensions          = each.value.dimensions
  period              = 60
  evaluation_periods  = 3
  datapoints_to_alarm = 2
  threshold           = each.value.threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_topic_arn == "" ? [] : [var.alarm_topic_arn]
}
