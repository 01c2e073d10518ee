"""podpod_scraping: keeps one current, validated image per podpod artist.

Layers, by folder:

- ``core``: plain Python (fetching, sources, images, naming); no Dagster imports.
- ``storage``: adapters for the catalog database and the object store.
- ``defs``: the thin Dagster layer (partitions, assets, IO managers, resources, automation).
"""

__version__ = "0.1.0"
