"""Request and response bodies of the REST API (pydantic), named after the reference."""
