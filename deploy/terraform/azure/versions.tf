terraform {
  # 1.9: variable validations that refer to other variables.
  required_version = ">= 1.9"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 5.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }
}

provider "azurerm" {
  features {
    resource_group {
      # The lake and the metadata live here: refuse to delete a group that
      # still holds resources Terraform does not manage.
      prevent_deletion_if_contains_resources = true
    }
  }
}
