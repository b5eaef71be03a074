"""ComfyUI entry point of the MicroCinema node pack (glue only; the nodes live in ``nodes/``)."""
if __package__:   # loaded as a package: by ComfyUI (custom_nodes/<folder>/__init__.py), or by the tests
    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
else:   # pytest sets up the repository folder as a package and imports this file with no parent package when the
    # folder's name is no Python name (a clone named "ComfyUI-MicroCinema", as packs are installed): no nodes then
    NODE_CLASS_MAPPINGS: dict = {}
    NODE_DISPLAY_NAME_MAPPINGS: dict = {}

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
