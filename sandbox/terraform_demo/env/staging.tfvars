environment    = "staging"
desired_count  = 2
instance_class = "db.t3.medium"
