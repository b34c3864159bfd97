"""Episode datasets: schema, shards and manifest, collection, curation, reading."""

from cosmos_sim.data.collect import CollectConfig, collect, rollout_episode
from cosmos_sim.data.dataset import EpisodeDataset, WindowDataset
from cosmos_sim.data.schema import EpisodeSpec
from cosmos_sim.data.shards import ShardReader, read_manifest

__all__ = ["CollectConfig", "collect", "rollout_episode", "EpisodeDataset", "WindowDataset", "EpisodeSpec",
           "ShardReader", "read_manifest"]
