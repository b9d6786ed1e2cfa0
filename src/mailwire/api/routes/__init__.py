"""One module per resource group of the REST API."""
