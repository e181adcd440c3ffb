# The alarms a deploy's bake watches: any of them in ALARM rolls the deploy back. Their names
# are an output (alarm_names) so the console's environment can be configured from it. The
# sandbox stack (sandbox/bootstrap.py) creates the same alarms under the same names.
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
    # One per colour: after a blue/green deploy the live colour may be green (see below).
    "api-unhealthy-hosts-blue" = {
      namespace   = "AWS/ApplicationELB"
      metric      = "UnHealthyHostCount"
      statistic   = "Maximum"
      threshold   = 0
      dimensions  = { LoadBalancer = aws_lb.api.arn_suffix, TargetGroup = aws_lb_target_group.blue.arn_suffix }
      description = "An API task in the blue target group fails its health check."
    }
    "api-unhealthy-hosts-green" = {
      namespace   = "AWS/ApplicationELB"
      metric      = "UnHealthyHostCount"
      statistic   = "Maximum"
      threshold   = 0
      dimensions  = { LoadBalancer = aws_lb.api.arn_suffix, TargetGroup = aws_lb_target_group.green.arn_suffix }
      description = "An API task in the green target group fails its health check."
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

# Unhealthy hosts in either colour. The bake watches this composite alarm, not the per-colour
# ones: an alarm on the blue target group alone would stay quiet while green serves the traffic
# after a blue/green deploy, and while both colours run (during a deploy, or with the old colour
# kept, BLUE_GREEN_SCALE_DOWN=false) the idle one must be healthy too. The console reads composite alarms (DescribeAlarms with AlarmTypes).
resource "aws_cloudwatch_composite_alarm" "unhealthy_hosts" {
  alarm_name        = "${local.name}-api-unhealthy-hosts"
  alarm_description = "An API task fails its health check, in the blue or the green target group."
  alarm_rule = join(" OR ", [
    for colour in ["blue", "green"] : "ALARM(\"${aws_cloudwatch_metric_alarm.bake["api-unhealthy-hosts-${colour}"].alarm_name}\")"
  ])
  alarm_actions = var.alarm_topic_arn == "" ? [] : [var.alarm_topic_arn]
}
