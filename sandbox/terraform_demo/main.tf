# The sandbox's Terraform stack. Providers cannot be downloaded offline, so it models the service
# with Terraform's built-in terraform_data resource only; plans, applies and drift behave for real.
terraform {
  backend "local" {}
}

variable "environment" {
  type = string
}

variable "desired_count" {
  type = number
}

variable "instance_class" {
  type = string
}

resource "terraform_data" "ecs_service" {
  input = {
    name          = "sentinel-api-${var.environment}"
    desired_count = var.desired_count
  }
}

resource "terraform_data" "database" {
  input = {
    identifier        = "sentinel-${var.environment}"
    instance_class    = var.instance_class
    storage_encrypted = true
  }
}

resource "terraform_data" "alarms" {
  input = ["sentinel-${var.environment}-5xx-rate", "sentinel-${var.environment}-p95-latency"]
}

output "service_name" {
  value = terraform_data.ecs_service.output.name
}
