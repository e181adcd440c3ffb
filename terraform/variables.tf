variable "environment" {
  description = "The console's environment name; also the Terraform workspace."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]*$", var.environment))
    error_message = "Use lowercase letters, digits and dashes."
  }
}

variable "aws_region" {
  description = "Region the service runs in."
  type        = string
  default     = "us-east-1"
}

variable "dr_region" {
  description = "Region that holds backup copies and the standby stack."
  type        = string
  default     = "us-west-2"
}

variable "vpc_cidr" {
  type    = string
  default = "10.0.0.0/16"
}

variable "availability_zones" {
  type = list(string)
}

variable "private_subnets" {
  type = list(string)
}

variable "public_subnets" {
  type = list(string)
}

variable "db_instance_class" {
  type    = string
  default = "db.t3.large"
}

variable "db_allocated_storage" {
  type    = number
  default = 100
}

variable "db_multi_az" {
  type    = bool
  default = true
}

variable "db_username" {
  type    = string
  default = "sentinel"
}

variable "db_backup_retention_days" {
  description = "RDS automated backups (point-in-time recovery window)."
  type        = number
  default     = 7

  validation {
    condition     = var.db_backup_retention_days >= 1
    error_message = "Keep at least one day of automated backups."
  }
}

variable "cache_node_type" {
  type    = string
  default = "cache.t3.medium"
}

variable "ecr_repository" {
  description = "Image repository URI; the console deploys releases by digest."
  type        = string
}

variable "image_tag" {
  description = "Initial image; later releases are deployed by the console, not Terraform."
  type        = string
  default     = "bootstrap"
}

variable "api_cpu" {
  type    = number
  default = 1024
}

variable "api_memory" {
  type    = number
  default = 2048
}

variable "api_desired_count" {
  type    = number
  default = 2
}

variable "test_listener_cidrs" {
  description = "Office/VPN ranges that reach the test listener (8443), where the console smoke-tests the idle colour; the VPC always does."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for cidr in var.test_listener_cidrs : can(cidrhost(cidr, 0)) && !contains(["0.0.0.0/0", "::/0"], cidr)])
    error_message = "Give office or VPN CIDR ranges; the test listener must not be open to the internet."
  }
}

variable "certificate_arn" {
  description = "ACM certificate for the HTTPS listener."
  type        = string
}

variable "domain_name" {
  type = string
}

variable "hosted_zone_id" {
  type = string
}

variable "alarm_topic_arn" {
  description = "SNS topic the alarms notify; empty for none."
  type        = string
  default     = ""
}

variable "log_retention_days" {
  type    = number
  default = 30
}

variable "backup_retention_days" {
  description = "How long AWS Backup keeps recovery points (in both regions)."
  type        = number
  default     = 35
}

variable "deletion_protection" {
  type    = bool
  default = true
}
