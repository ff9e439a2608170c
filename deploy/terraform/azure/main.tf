# radar on Azure: Event Hubs (Kafka protocol) for the event log, a Data Lake
# Storage Gen2 account for the lake and model artifacts, PostgreSQL flexible
# server for the metadata, and Container Apps running `radar up`, scaled by
# KEDA on the scorer's consumer-group lag. Everything talks over a private
# virtual network; only the API's HTTPS endpoint is public (external_ingress).

locals {
  # Globally unique names get a random suffix.
  suffix = random_string.suffix.result

  subnets = {
    # Container Apps environment with workload profiles: /27 at least.
    apps = cidrsubnet(var.vnet_address_space, 7, 0)
    # PostgreSQL flexible server, VNet-injected.
    postgres = cidrsubnet(var.vnet_address_space, 8, 2)
    # Private endpoints of the storage account and the Event Hubs namespace.
    endpoints = cidrsubnet(var.vnet_address_space, 8, 3)
  }

  declaration_file = coalesce(var.stream_declaration_file, "${path.module}/../../../examples/transactions.toml")

  # radar.toml, mounted from a Container Apps secret. Secrets and endpoints
  # come from the environment (see the container's env below).
  radar_toml = <<-TOML
    [storage]
    root = "az://${azurerm_storage_container.lake.name}/radar"
    local_dir = "/var/lib/radar"

    [log]
    kind = "kafka"
    partitions = ${var.partitions}

    # [log.kafka] event_hubs_connection_string: RADAR_EVENT_HUBS_CONNECTION_STRING
    # [metadata] url: RADAR_METADATA_URL

    ${file(local.declaration_file)}
  TOML

  # TLS, the server's certificate checked against the image's CA roots
  # (Azure's PostgreSQL certificates chain to public roots) and its name.
  metadata_url = format(
    "postgres://%s:%s@%s:5432/%s?sslmode=verify-full",
    azurerm_postgresql_flexible_server.metadata.administrator_login,
    random_password.postgres.result,
    azurerm_postgresql_flexible_server.metadata.fqdn,
    azurerm_postgresql_flexible_server_database.radar.name,
  )

  # The container's environment: value or secret reference.
  env = [
    { name = "RADAR_METADATA_URL", secret = "metadata-url", value = null },
    { name = "RADAR_EVENT_HUBS_CONNECTION_STRING", secret = "eventhubs-connection-string", value = null },
    { name = "RADAR_ENTITY_SECRET", secret = "entity-secret", value = null },
    { name = "AZURE_STORAGE_ACCOUNT_NAME", secret = null, value = azurerm_storage_account.lake.name },
    { name = "AZURE_STORAGE_ACCOUNT_KEY", secret = "storage-account-key", value = null },
    { name = "RADAR_LOG_FORMAT", secret = null, value = "json" },
    { name = "RUST_LOG", secret = null, value = "info" },
  ]

  registry = var.registry_server == null ? [] : [{
    server   = var.registry_server
    username = var.registry_username
  }]
}

resource "random_string" "suffix" {
  length  = 6
  upper   = false
  special = false
}

# Alphanumeric only: it goes into a URL unescaped.
resource "random_password" "postgres" {
  length  = 40
  special = false
}

# The keyed-hash secret that places entity state: the same for every
# replica (RADAR_ENTITY_SECRET, 32 hex characters).
resource "random_id" "entity_secret" {
  byte_length = 16
}

resource "azurerm_resource_group" "radar" {
  name     = "rg-${var.name}"
  location = var.location
  tags     = var.tags
}

resource "azurerm_log_analytics_workspace" "radar" {
  name                = "log-${var.name}-${local.suffix}"
  location            = azurerm_resource_group.radar.location
  resource_group_name = azurerm_resource_group.radar.name
  sku                 = "PerGB2018"
  retention_in_days   = var.log_retention_days
  tags                = var.tags
}

# --- Network --------------------------------------------------------------

resource "azurerm_virtual_network" "radar" {
  name                = "vnet-${var.name}"
  location            = azurerm_resource_group.radar.location
  resource_group_name = azurerm_resource_group.radar.name
  address_space       = [var.vnet_address_space]
  tags                = var.tags
}

resource "azurerm_subnet" "apps" {
  name                 = "snet-apps"
  resource_group_name  = azurerm_resource_group.radar.name
  virtual_network_name = azurerm_virtual_network.radar.name
  address_prefixes     = [local.subnets.apps]

  delegation {
    name = "container-apps"
    service_delegation {
      name    = "Microsoft.App/environments"
      actions = ["Microsoft.Network/virtualNetworks/subnets/join/action"]
    }
  }
}

resource "azurerm_subnet" "postgres" {
  name                 = "snet-postgres"
  resource_group_name  = azurerm_resource_group.radar.name
  virtual_network_name = azurerm_virtual_network.radar.name
  address_prefixes     = [local.subnets.postgres]

  delegation {
    name = "postgres-flexible"
    service_delegation {
      name    = "Microsoft.DBforPostgreSQL/flexibleServers"
      actions = ["Microsoft.Network/virtualNetworks/subnets/join/action"]
    }
  }
}

resource "azurerm_subnet" "endpoints" {
  name                 = "snet-endpoints"
  resource_group_name  = azurerm_resource_group.radar.name
  virtual_network_name = azurerm_virtual_network.radar.name
  address_prefixes     = [local.subnets.endpoints]
}

resource "azurerm_network_security_group" "apps" {
  name                = "nsg-${var.name}-apps"
  location            = azurerm_resource_group.radar.location
  resource_group_name = azurerm_resource_group.radar.name
  tags                = var.tags

  # The API over HTTPS only (ingress refuses plain HTTP) from the allowed
  # ranges; the default rules allow traffic inside the VNet and from Azure's
  # load balancer.
  dynamic "security_rule" {
    for_each = var.external_ingress ? [1] : []
    content {
      name                       = "allow-https-in"
      priority                   = 100
      direction                  = "Inbound"
      access                     = "Allow"
      protocol                   = "Tcp"
      source_port_range          = "*"
      destination_port_range     = "443"
      source_address_prefixes    = var.allowed_ingress_cidrs
      destination_address_prefix = local.subnets.apps
    }
  }
}

resource "azurerm_network_security_group" "private" {
  name                = "nsg-${var.name}-private"
  location            = azurerm_resource_group.radar.location
  resource_group_name = azurerm_resource_group.radar.name
  tags                = var.tags

  # Only the VNet reaches PostgreSQL and the private endpoints (the default
  # rules already deny the Internet; this says so explicitly).
  security_rule {
    name                       = "deny-internet-in"
    priority                   = 4000
    direction                  = "Inbound"
    access                     = "Deny"
    protocol                   = "*"
    source_port_range          = "*"
    destination_port_range     = "*"
    source_address_prefix      = "Internet"
    destination_address_prefix = "*"
  }
}

resource "azurerm_subnet_network_security_group_association" "apps" {
  subnet_id                 = azurerm_subnet.apps.id
  network_security_group_id = azurerm_network_security_group.apps.id
}

resource "azurerm_subnet_network_security_group_association" "postgres" {
  subnet_id                 = azurerm_subnet.postgres.id
  network_security_group_id = azurerm_network_security_group.private.id
}

resource "azurerm_subnet_network_security_group_association" "endpoints" {
  subnet_id                 = azurerm_subnet.endpoints.id
  network_security_group_id = azurerm_network_security_group.private.id
}

resource "azurerm_private_dns_zone" "zones" {
  for_each = {
    postgres   = "${var.name}.private.postgres.database.azure.com"
    blob       = "privatelink.blob.core.windows.net"
    servicebus = "privatelink.servicebus.windows.net"
  }
  name                = each.value
  resource_group_name = azurerm_resource_group.radar.name
  tags                = var.tags
}

resource "azurerm_private_dns_zone_virtual_network_link" "zones" {
  for_each             = azurerm_private_dns_zone.zones
  name                 = "link-${each.key}"
  private_dns_zone_id  = each.value.id
  virtual_network_id   = azurerm_virtual_network.radar.id
  registration_enabled = false
  tags                 = var.tags
}

# --- Event log: Event Hubs, Kafka protocol --------------------------------

resource "azurerm_eventhub_namespace" "log" {
  name                     = "evhns-${var.name}-${local.suffix}"
  location                 = azurerm_resource_group.radar.location
  resource_group_name      = azurerm_resource_group.radar.name
  sku                      = "Standard"
  capacity                 = var.eventhubs_capacity
  auto_inflate_enabled     = true
  maximum_throughput_units = var.eventhubs_max_throughput_units
  minimum_tls_version      = "1.2"
  # radar (librdkafka) authenticates to Event Hubs' Kafka endpoint with
  # SASL PLAIN and the namespace connection string: SAS must stay on.
  local_authentication_enabled  = true
  public_network_access_enabled = false
  tags                          = var.tags

  network_rulesets {
    default_action                 = "Deny"
    public_network_access_enabled  = false
    trusted_service_access_enabled = true
  }
}

# The stream's topic. radar checks at start that the topic has exactly
# [log] partitions partitions.
resource "azurerm_eventhub" "stream" {
  name              = var.stream_name
  namespace_id      = azurerm_eventhub_namespace.log.id
  partition_count   = var.partitions
  message_retention = var.message_retention_days
}

# radar produces, consumes (groups radar-scorer and radar-capture, made on
# first use) and asks for its topics at start (Kafka CreateTopics, answered
# "already exists"): listen, send and manage.
resource "azurerm_eventhub_namespace_authorization_rule" "radar" {
  name                = "radar"
  namespace_name      = azurerm_eventhub_namespace.log.name
  resource_group_name = azurerm_resource_group.radar.name
  listen              = true
  send                = true
  manage              = true
}

resource "azurerm_private_endpoint" "eventhubs" {
  name                = "pe-${var.name}-eventhubs"
  location            = azurerm_resource_group.radar.location
  resource_group_name = azurerm_resource_group.radar.name
  subnet_id           = azurerm_subnet.endpoints.id
  tags                = var.tags

  private_service_connection {
    name                           = "eventhubs"
    private_connection_resource_id = azurerm_eventhub_namespace.log.id
    subresource_names              = ["namespace"]
    is_manual_connection           = false
  }

  private_dns_zone_group {
    name                 = "eventhubs"
    private_dns_zone_ids = [azurerm_private_dns_zone.zones["servicebus"].id]
  }
}

# --- Lake and artifacts: Data Lake Storage Gen2 -----------------------------

resource "azurerm_storage_account" "lake" {
  #checkov:skip=CKV2_AZURE_40:radar's object-store client authenticates with AZURE_STORAGE_ACCOUNT_KEY; Container Apps' managed-identity endpoint is not passed to it yet (DEPLOY.md), so Shared Key stays on
  #checkov:skip=CKV2_AZURE_1:Microsoft-managed keys encrypt the lake (plus infrastructure encryption); customer-managed keys need a Key Vault this module does not make
  #checkov:skip=CKV_AZURE_33:The account serves blobs only (radar uses no queues); the queue logging setting is not managed by azurerm 5
  name                              = substr("st${var.name}${local.suffix}", 0, 24)
  location                          = azurerm_resource_group.radar.location
  resource_group_name               = azurerm_resource_group.radar.name
  account_kind                      = "StorageV2"
  account_tier                      = "Standard"
  account_replication_type          = var.storage_replication
  is_hns_enabled                    = true
  min_tls_version                   = "TLS1_2"
  https_traffic_only_enabled        = true
  allow_nested_items_to_be_public   = false
  public_network_access_enabled     = false
  shared_access_key_enabled         = true
  default_to_oauth_authentication   = true
  local_user_enabled                = false
  cross_tenant_replication_enabled  = false
  infrastructure_encryption_enabled = true
  tags                              = var.tags

  sas_policy {
    expiration_period = "01.00:00:00"
    expiration_action = "Log"
  }

  blob_properties {
    delete_retention_policy {
      days = 14
    }
    container_delete_retention_policy {
      days = 14
    }
  }

  network_rules {
    default_action = "Deny"
    bypass         = ["AzureServices"]
  }
}

# Created through Azure Resource Manager (storage_account_id), so it works
# with the account's public endpoint closed.
resource "azurerm_storage_container" "lake" {
  #checkov:skip=CKV2_AZURE_21:Reads, writes and deletes of the blob service are logged by azurerm_monitor_diagnostic_setting.blob below; the check only recognizes the legacy storage-insights resource
  name                  = "radar"
  storage_account_id    = azurerm_storage_account.lake.id
  container_access_type = "private"
}

# Every read, write and delete on the lake, to Log Analytics.
resource "azurerm_monitor_diagnostic_setting" "blob" {
  name                       = "lake-to-log-analytics"
  target_resource_id         = "${azurerm_storage_account.lake.id}/blobServices/default"
  log_analytics_workspace_id = azurerm_log_analytics_workspace.radar.id

  enabled_log {
    category = "StorageRead"
  }
  enabled_log {
    category = "StorageWrite"
  }
  enabled_log {
    category = "StorageDelete"
  }
  enabled_metric {
    category = "Transaction"
  }
}

resource "azurerm_private_endpoint" "blob" {
  name                = "pe-${var.name}-blob"
  location            = azurerm_resource_group.radar.location
  resource_group_name = azurerm_resource_group.radar.name
  subnet_id           = azurerm_subnet.endpoints.id
  tags                = var.tags

  private_service_connection {
    name                           = "blob"
    private_connection_resource_id = azurerm_storage_account.lake.id
    subresource_names              = ["blob"]
    is_manual_connection           = false
  }

  private_dns_zone_group {
    name                 = "blob"
    private_dns_zone_ids = [azurerm_private_dns_zone.zones["blob"].id]
  }
}

# --- Metadata: PostgreSQL flexible server -----------------------------------

resource "azurerm_postgresql_flexible_server" "metadata" {
  #checkov:skip=CKV2_AZURE_57:The server is VNet-injected (delegated subnet, private DNS zone, no public endpoint); Azure offers private endpoints only to servers created with public access, so none is added
  name                          = "psql-${var.name}-${local.suffix}"
  location                      = azurerm_resource_group.radar.location
  resource_group_name           = azurerm_resource_group.radar.name
  version                       = var.postgres_version
  sku_name                      = var.postgres_sku
  storage_mb                    = var.postgres_storage_mb
  auto_grow_enabled             = true
  delegated_subnet_id           = azurerm_subnet.postgres.id
  private_dns_zone_id           = azurerm_private_dns_zone.zones["postgres"].id
  public_network_access_enabled = false
  administrator_login           = "radar"
  administrator_password        = random_password.postgres.result
  backup_retention_days         = 35
  geo_redundant_backup_enabled  = true
  zone                          = "1"
  tags                          = var.tags

  authentication {
    password_auth_enabled         = true
    active_directory_auth_enabled = false
  }

  dynamic "high_availability" {
    for_each = var.postgres_high_availability ? [1] : []
    content {
      mode                      = "ZoneRedundant"
      standby_availability_zone = "2"
    }
  }

  maintenance_window {
    day_of_week  = 0
    start_hour   = 3
    start_minute = 0
  }

  depends_on = [azurerm_private_dns_zone_virtual_network_link.zones]

  lifecycle {
    # Azure may move the primary after a failover.
    ignore_changes = [zone, high_availability[0].standby_availability_zone]
  }
}

resource "azurerm_postgresql_flexible_server_database" "radar" {
  name      = "radar"
  server_id = azurerm_postgresql_flexible_server.metadata.id
  charset   = "UTF8"
  collation = "en_US.utf8"
}

resource "azurerm_postgresql_flexible_server_configuration" "log_connections" {
  name      = "log_connections"
  server_id = azurerm_postgresql_flexible_server.metadata.id
  value     = "on"
}

resource "azurerm_postgresql_flexible_server_configuration" "log_disconnections" {
  name      = "log_disconnections"
  server_id = azurerm_postgresql_flexible_server.metadata.id
  value     = "on"
}

resource "azurerm_postgresql_flexible_server_configuration" "log_checkpoints" {
  name      = "log_checkpoints"
  server_id = azurerm_postgresql_flexible_server.metadata.id
  value     = "on"
}

# --- radar on Container Apps -------------------------------------------------

resource "azurerm_container_app_environment" "radar" {
  name                           = "cae-${var.name}"
  location                       = azurerm_resource_group.radar.location
  resource_group_name            = azurerm_resource_group.radar.name
  logs_destination               = "log-analytics"
  log_analytics_workspace_id     = azurerm_log_analytics_workspace.radar.id
  infrastructure_subnet_id       = azurerm_subnet.apps.id
  internal_load_balancer_enabled = !var.external_ingress
  tags                           = var.tags

  workload_profile {
    name                  = "Consumption"
    workload_profile_type = "Consumption"
  }
}

# The workers: `radar up` in each replica. Replicas of one stream form the
# Kafka consumer groups radar-scorer and radar-capture and split the Event
# Hub's partitions; KEDA's Kafka scaler adds replicas while the scorer's
# group lags, up to max_replicas (at most the partition count). Scorer
# state is checkpointed per partition to the storage account and moves with
# its partition, so replicas come and go without losing entity histories.
resource "azurerm_container_app" "radar" {
  name                         = "ca-${var.name}"
  container_app_environment_id = azurerm_container_app_environment.radar.id
  resource_group_name          = azurerm_resource_group.radar.name
  revision_mode                = "Single"
  workload_profile_name        = "Consumption"
  tags                         = var.tags

  # Secrets (explicit blocks: a dynamic block over them would need a
  # for_each of sensitive values).
  secret {
    name  = "radar-toml"
    value = local.radar_toml
  }
  secret {
    name  = "metadata-url"
    value = local.metadata_url
  }
  secret {
    name  = "eventhubs-connection-string"
    value = azurerm_eventhub_namespace_authorization_rule.radar.primary_connection_string
  }
  secret {
    name  = "storage-account-key"
    value = azurerm_storage_account.lake.primary_access_key
  }
  secret {
    name  = "entity-secret"
    value = random_id.entity_secret.hex
  }
  # KEDA's Kafka scaler takes these trigger parameters from secrets only.
  secret {
    name  = "kafka-sasl"
    value = "plaintext"
  }
  secret {
    name  = "kafka-tls"
    value = "enable"
  }
  secret {
    name  = "kafka-username"
    value = "$ConnectionString"
  }

  dynamic "secret" {
    for_each = var.registry_server == null ? [] : [1]
    content {
      name  = "registry-password"
      value = var.registry_password
    }
  }

  dynamic "registry" {
    for_each = local.registry
    content {
      server               = registry.value.server
      username             = registry.value.username
      password_secret_name = "registry-password"
    }
  }

  ingress {
    external_enabled           = var.external_ingress
    target_port                = 8080
    transport                  = "http"
    allow_insecure_connections = false

    traffic_weight {
      latest_revision = true
      percentage      = 100
    }

    dynamic "ip_security_restriction" {
      for_each = var.external_ingress ? var.allowed_ingress_cidrs : []
      content {
        name             = "allow-${replace(replace(ip_security_restriction.value, ".", "-"), "/", "-")}"
        action           = "Allow"
        ip_address_range = ip_security_restriction.value
      }
    }
  }

  template {
    min_replicas                = var.min_replicas
    max_replicas                = var.max_replicas
    polling_interval_in_seconds = 15
    cooldown_period_in_seconds  = 300
    # SIGTERM drains: capture and the scorer catch up and checkpoint.
    termination_grace_period_seconds = 90

    container {
      name   = "radar"
      image  = var.image
      cpu    = var.cpu
      memory = var.memory
      args   = ["up", "--config", "/etc/radar/radar.toml", "--host", "0.0.0.0", "--port", "8080"]

      dynamic "env" {
        for_each = local.env
        content {
          name        = env.value.name
          secret_name = env.value.secret
          value       = env.value.value
        }
      }

      startup_probe {
        transport               = "HTTP"
        port                    = 8080
        path                    = "/healthz"
        interval_seconds        = 2
        timeout                 = 2
        failure_count_threshold = 30
      }

      liveness_probe {
        transport               = "HTTP"
        port                    = 8080
        path                    = "/healthz"
        interval_seconds        = 10
        timeout                 = 3
        failure_count_threshold = 6
      }

      # Ready once a champion model is loaded and every component is ok.
      readiness_probe {
        transport               = "HTTP"
        port                    = 8080
        path                    = "/readyz"
        interval_seconds        = 5
        timeout                 = 3
        failure_count_threshold = 3
        success_count_threshold = 1
      }

      volume_mounts {
        name     = "config"
        path     = "/etc/radar/radar.toml"
        sub_path = "radar-toml"
      }

      volume_mounts {
        name = "local"
        path = "/var/lib/radar"
      }
    }

    volume {
      name         = "config"
      storage_type = "Secret"
    }

    volume {
      name         = "local"
      storage_type = "EmptyDir"
    }

    custom_scale_rule {
      name             = "scorer-lag"
      custom_rule_type = "kafka"
      metadata = {
        bootstrapServers  = "${azurerm_eventhub_namespace.log.name}.servicebus.windows.net:9093"
        consumerGroup     = "radar-scorer"
        topic             = azurerm_eventhub.stream.name
        lagThreshold      = tostring(var.lag_threshold)
        offsetResetPolicy = "earliest"
      }

      authentication {
        secret_name       = "kafka-sasl"
        trigger_parameter = "sasl"
      }
      authentication {
        secret_name       = "kafka-tls"
        trigger_parameter = "tls"
      }
      authentication {
        secret_name       = "kafka-username"
        trigger_parameter = "username"
      }
      authentication {
        secret_name       = "eventhubs-connection-string"
        trigger_parameter = "password"
      }
    }
  }

  depends_on = [
    azurerm_private_endpoint.eventhubs,
    azurerm_private_endpoint.blob,
  ]
}

# One-off radar commands inside the VNet, with the app's configuration:
# make the first API key, train and promote the first champion, list
# models (DEPLOY.md). Set var.admin_args, apply, then start an execution
# with `az containerapp job start`.
resource "azurerm_container_app_job" "admin" {
  name                         = "caj-${var.name}-admin"
  location                     = azurerm_resource_group.radar.location
  resource_group_name          = azurerm_resource_group.radar.name
  container_app_environment_id = azurerm_container_app_environment.radar.id
  workload_profile_name        = "Consumption"
  replica_timeout_in_seconds   = 7200
  replica_retry_limit          = 0
  tags                         = var.tags

  manual_trigger_config {
    parallelism              = 1
    replica_completion_count = 1
  }

  # Secrets (explicit blocks: a dynamic block over them would need a
  # for_each of sensitive values).
  secret {
    name  = "radar-toml"
    value = local.radar_toml
  }
  secret {
    name  = "metadata-url"
    value = local.metadata_url
  }
  secret {
    name  = "eventhubs-connection-string"
    value = azurerm_eventhub_namespace_authorization_rule.radar.primary_connection_string
  }
  secret {
    name  = "storage-account-key"
    value = azurerm_storage_account.lake.primary_access_key
  }
  secret {
    name  = "entity-secret"
    value = random_id.entity_secret.hex
  }

  dynamic "secret" {
    for_each = var.registry_server == null ? [] : [1]
    content {
      name  = "registry-password"
      value = var.registry_password
    }
  }

  dynamic "registry" {
    for_each = local.registry
    content {
      server               = registry.value.server
      username             = registry.value.username
      password_secret_name = "registry-password"
    }
  }

  template {
    container {
      name   = "radar"
      image  = var.image
      cpu    = var.cpu
      memory = var.memory
      args   = var.admin_args

      dynamic "env" {
        for_each = local.env
        content {
          name        = env.value.name
          secret_name = env.value.secret
          value       = env.value.value
        }
      }

      volume_mounts {
        name     = "config"
        path     = "/etc/radar/radar.toml"
        sub_path = "radar-toml"
      }

      volume_mounts {
        name = "local"
        path = "/var/lib/radar"
      }
    }

    volume {
      name         = "config"
      storage_type = "Secret"
    }

    volume {
      name         = "local"
      storage_type = "EmptyDir"
    }
  }
}
