resource "aws_ecs_cluster" "sentinel" {
  name = "${local.name}-cluster"

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

data "aws_iam_policy_document" "ecs_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "execution" {
  name               = "${local.name}-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_assume.json
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

# The execution role reads exactly the two secrets the container receives.
data "aws_iam_policy_document" "read_secrets" {
  statement {
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [module.database.master_secret_arn, aws_secretsmanager_secret.redis_url.arn]
  }
}

resource "aws_iam_role_policy" "read_secrets" {
  name   = "read-secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.read_secrets.json
}

resource "aws_iam_role" "task" {
  name               = "${local.name}-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_assume.json
}

resource "aws_ecs_task_definition" "api" {
  family                   = "${local.name}-api"
  network_mode             = "awsvpc"
  requires_compatibilities = ["FARGATE"]
  cpu                      = var.api_cpu
  memory                   = var.api_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  # Secrets come from Secrets Manager through `secrets`; `environment` holds only plain settings.
  container_definitions = jsonencode([{
    name      = "api"
    image     = "${var.ecr_repository}:${var.image_tag}"
    essential = true
    portMappings = [{
      containerPort = 8000
      protocol      = "tcp"
    }]
    environment = [
      { name = "DB_HOST", value = module.database.address },
      { name = "DB_NAME", value = module.database.db_name },
      { name = "DB_USER", value = var.db_username },
    ]
    secrets = [
      { name = "DB_PASSWORD", valueFrom = "${module.database.master_secret_arn}:password::" },
      { name = "REDIS_URL", valueFrom = aws_secretsmanager_secret.redis_url.arn },
    ]
    healthCheck = {
      command  = ["CMD-SHELL", "curl -fsS http://localhost:8000/healthz || exit 1"]
      interval = 15
      retries  = 3
    }
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        "awslogs-group"         = aws_cloudwatch_log_group.api.name
        "awslogs-region"        = var.aws_region
        "awslogs-stream-prefix" = "ecs"
      }
    }
  }])
}

# Blue and green take turns: blue starts live behind the blue target group, green starts as the
# standby at 0 tasks. A blue/green deploy gives the idle colour the live colour's desired count in
# the same UpdateService as the new task definition, waits for its targets to be healthy, tests it
# on the test listener, shifts the weights, and after the bake scales the old colour to 0
# (BLUE_GREEN_SCALE_DOWN, docs/deployments.md).
resource "aws_ecs_service" "api" {
  name            = "${local.name}-api"
  cluster         = aws_ecs_cluster.sentinel.id
  task_definition = aws_ecs_task_definition.api.arn
  desired_count   = var.api_desired_count
  launch_type     = "FARGATE"

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets         = module.network.private_subnet_ids
    security_groups = [aws_security_group.api.id]
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.blue.arn
    container_name   = "api"
    container_port   = 8000
  }

  # The console deploys new task definitions and moves the desired count; Terraform must not
  # undo a deploy (or a scale-down) on the next apply.
  lifecycle {
    ignore_changes = [task_definition, desired_count]
  }

  depends_on = [aws_lb_listener.https]
}

resource "aws_ecs_service" "api_green" {
  name            = "${local.name}-api-green"
  cluster         = aws_ecs_cluster.sentinel.id
  task_definition = aws_ecs_task_definition.api.arn
  desired_count   = 0 # at creation only: the console sizes it (see above)
  launch_type     = "FARGATE"

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets         = module.network.private_subnet_ids
    security_groups = [aws_security_group.api.id]
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.green.arn
    container_name   = "api"
    container_port   = 8000
  }

  # The console moves both; Terraform must not undo a deploy (or a scale-down) on the next apply.
  lifecycle {
    ignore_changes = [task_definition, desired_count]
  }

  depends_on = [aws_lb_listener.https]
}
