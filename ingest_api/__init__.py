"""The HTTP layer: a FastAPI app that parses requests and calls ``workbench``."""
