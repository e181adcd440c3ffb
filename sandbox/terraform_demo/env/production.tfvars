environment    = "production"
desired_count  = 4
instance_class = "db.r6g.large"
