output "resource_group" {
  description = "The resource group holding everything."
  value       = azurerm_resource_group.radar.name
}

output "api_url" {
  description = "radar's API and dashboard (HTTPS)."
  value       = "https://${azurerm_container_app.radar.ingress[0].fqdn}"
}

output "container_app" {
  description = "The Container App running `radar up`."
  value       = azurerm_container_app.radar.name
}

output "admin_job" {
  description = "The Container Apps job for one-off radar commands (az containerapp job start)."
  value       = azurerm_container_app_job.admin.name
}

output "eventhubs_namespace" {
  description = "Event Hubs namespace; producers reach its Kafka endpoint at <namespace>.servicebus.windows.net:9093 (through the private endpoint)."
  value       = azurerm_eventhub_namespace.log.name
}

output "kafka_bootstrap_servers" {
  description = "Kafka bootstrap address of the Event Hubs namespace."
  value       = "${azurerm_eventhub_namespace.log.name}.servicebus.windows.net:9093"
}

output "topic" {
  description = "The stream's Event Hub (Kafka topic)."
  value       = azurerm_eventhub.stream.name
}

output "storage_root" {
  description = "radar's storage root: the lake (Parquet, Hive-style partitions) and model artifacts."
  value       = "abfss://${azurerm_storage_container.lake.name}@${azurerm_storage_account.lake.name}.dfs.core.windows.net/radar"
}

output "postgres_fqdn" {
  description = "The metadata store's private host name."
  value       = azurerm_postgresql_flexible_server.metadata.fqdn
}

output "radar_toml" {
  description = "The radar.toml the containers run with (no secrets in it)."
  value       = local.radar_toml
}

output "metadata_url" {
  description = "RADAR_METADATA_URL (holds the database password)."
  value       = local.metadata_url
  sensitive   = true
}
