"""One partition per artist: the key is the artist's id in the catalog."""

import dagster as dg

ARTISTS_PARTITION_NAME = "artists"

artist_partitions = dg.DynamicPartitionsDefinition(name=ARTISTS_PARTITION_NAME)
