# The database lives in modules/database. Its master password is generated and kept by RDS in
# Secrets Manager (manage_master_user_password), so it never appears in a var file, the state's
# plain attributes or a container's environment.
module "database" {
  source = "./modules/database"

  name                    = local.name
  vpc_id                  = module.network.vpc_id
  subnet_ids              = module.network.private_subnet_ids
  allowed_security_groups = [aws_security_group.api.id]
  instance_class          = var.db_instance_class
  allocated_storage       = var.db_allocated_storage
  multi_az                = var.db_multi_az
  username                = var.db_username
  backup_retention_days   = var.db_backup_retention_days
  deletion_protection     = var.deletion_protection
}
