variable "name" {
  description = "Prefix of every resource name (lowercase letters and digits, 3 to 12 characters)."
  type        = string
  default     = "radar"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{2,11}$", var.name))
    error_message = "name must be 3 to 12 lowercase letters and digits, starting with a letter."
  }
}

variable "location" {
  description = "Azure region."
  type        = string
  default     = "westeurope"
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = { app = "radar" }
}

variable "image" {
  description = "radar's image (built from deploy/Dockerfile), e.g. myregistry.azurecr.io/radar:0.1.0 or by digest."
  type        = string
}

variable "registry_server" {
  description = "Registry to pull the image from with a user name and password (leave null for a public image)."
  type        = string
  default     = null
}

variable "registry_username" {
  description = "User name for registry_server."
  type        = string
  default     = null
}

variable "registry_password" {
  description = "Password for registry_server."
  type        = string
  default     = null
  sensitive   = true
}

variable "stream_name" {
  description = "The stream radar serves: its Event Hub (Kafka topic) has this name, and the declaration must declare it."
  type        = string
  default     = "transactions"
}

variable "stream_declaration_file" {
  description = "A TOML file with the stream's [streams.<name>] declaration, appended to the generated radar.toml. Default: the repository's examples/transactions.toml."
  type        = string
  default     = null
}

variable "partitions" {
  description = "Partitions of the stream's Event Hub: the most radar replicas that share the stream. Fixed once created on the Standard tier."
  type        = number
  default     = 4

  validation {
    condition     = var.partitions >= 1 && var.partitions <= 32
    error_message = "partitions must be between 1 and 32 on the Standard tier."
  }
}

variable "message_retention_days" {
  description = "Days Event Hubs keeps events (Standard: at most 7). Capture writes them to the lake well before."
  type        = number
  default     = 7
}

variable "eventhubs_capacity" {
  description = "Throughput units of the Event Hubs namespace to start with."
  type        = number
  default     = 1
}

variable "eventhubs_max_throughput_units" {
  description = "Auto-inflate ceiling of throughput units."
  type        = number
  default     = 4
}

variable "min_replicas" {
  description = "radar replicas kept running (at least 1: the HTTP API and scorer state must stay up)."
  type        = number
  default     = 1

  validation {
    condition     = var.min_replicas >= 1 && var.min_replicas <= var.max_replicas
    error_message = "min_replicas must be at least 1 (radar does not scale to zero) and at most max_replicas."
  }
}

variable "max_replicas" {
  description = "radar replicas at most, up to partitions (a replica beyond the partition count would hold no partition). Scorer state is checkpointed per partition to the storage account and moves with its partition."
  type        = number
  default     = 4

  validation {
    condition     = var.max_replicas >= 1 && var.max_replicas <= var.partitions
    error_message = "max_replicas must be between 1 and partitions."
  }
}

variable "lag_threshold" {
  description = "Consumer-group lag per replica (records not yet scored) that KEDA's Kafka scaler aims for."
  type        = number
  default     = 5000
}

variable "cpu" {
  description = "vCPU per replica (Consumption profile: 0.25 to 4, memory 2 GiB per vCPU)."
  type        = number
  default     = 1
}

variable "memory" {
  description = "Memory per replica, matching cpu (e.g. 2Gi for 1 vCPU)."
  type        = string
  default     = "2Gi"
}

variable "external_ingress" {
  description = "Serve the API on a public HTTPS endpoint (true) or only inside the virtual network (false)."
  type        = bool
  default     = true
}

variable "allowed_ingress_cidrs" {
  description = "Address ranges allowed to reach the API over HTTPS when external_ingress is true."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "vnet_address_space" {
  description = "Address space of the virtual network (a /16 is split into the subnets below)."
  type        = string
  default     = "10.40.0.0/16"
}

variable "storage_replication" {
  description = "Replication of the lake's storage account: the lake is the system of record, so geo-redundant (GRS, RAGRS, GZRS or RAGZRS)."
  type        = string
  default     = "GZRS"

  validation {
    condition     = contains(["GRS", "RAGRS", "GZRS", "RAGZRS"], var.storage_replication)
    error_message = "storage_replication must be GRS, RAGRS, GZRS or RAGZRS."
  }
}

variable "postgres_version" {
  description = "PostgreSQL major version."
  type        = string
  default     = "16"
}

variable "postgres_sku" {
  description = "PostgreSQL flexible server SKU."
  type        = string
  default     = "GP_Standard_D2ds_v5"
}

variable "postgres_storage_mb" {
  description = "PostgreSQL storage in MB."
  type        = number
  default     = 32768
}

variable "postgres_high_availability" {
  description = "Zone-redundant standby for PostgreSQL (needs a region with availability zones)."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "Days Log Analytics keeps radar's logs."
  type        = number
  default     = 90
}

variable "admin_args" {
  description = "Arguments of the admin job's radar command (run with `az containerapp job start`), e.g. [\"keys\", \"create\", \"--role\", \"admin\", \"--name\", \"ops\", \"--config\", \"/etc/radar/radar.toml\"] or [\"train\", \"--config\", \"/etc/radar/radar.toml\", \"--promote\"]."
  type        = list(string)
  default     = ["models", "ls", "--config", "/etc/radar/radar.toml"]
}
