"""The API's routes, one module per resource, each an ``APIRouter`` (``router``) that
``interfaces.api.app.create_api`` includes in the order of the OpenAPI document."""
