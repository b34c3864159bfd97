"""LeRobot v3.0 interchange: our datasets out (`export_lerobot`) and any v3.0 dataset in (`import_lerobot`).

Both sides use LeRobot's `CODEBASE_VERSION "v3.0"` layout, written and read with pyarrow and imageio's ffmpeg
(the lerobot package is needed for neither):

    meta/info.json                      codebase_version, fps, features (dtype, shape, names), path templates
    meta/stats.json, meta/tasks.parquet statistics per feature; task strings
    meta/episodes/chunk-C/file-F.parquet  per episode: length, tasks, dataset_from_index/to_index (its rows),
                                        data/chunk_index + file_index, and per video key chunk/file index and
                                        from/to timestamp of its frames in that video file
    data/chunk-C/file-F.parquet         one row per frame (many episodes per file)
    videos/<video key>/chunk-C/file-F.mp4  the frames, many episodes per file

Export (`cosmos-sim data export --format lerobot DIR OUT`). A row is a LeRobot frame: the observation at step t
(the frame in the video, `observation.state`, the camera: `observation.camera.extrinsics` [16] and
`observation.camera.fovy`), the `action` taken there and what followed it (`next.reward`, `next.done`,
`next.success`). So an episode of T steps gives T rows (as LeRobot's recorder writes them: the frame after the
last action has no action). One view is the video key `observation.image`; V views (`collect --views V`) are
`observation.images.view0..V-1`, with `observation.camera.view<v>.extrinsics` / `.fovy`. Frames go through
lossy H.264 (yuv420p) by default; `--lossless` writes H.264 in RGB at qp 0 (libx264rgb, gbrp), which decodes
to the very frames written. What LeRobot has no place for is kept in the episodes table, so an import gives the
dataset back: `cosmos_sim/seed`, `cosmos_sim/metadata` (our episode metadata, JSON), the frame after the last
action (`cosmos_sim/final_frame`: a PNG per view; `cosmos_sim/final_state`, `cosmos_sim/final_extrinsics`,
`cosmos_sim/final_fovy`), `cosmos_sim/terminated` and `cosmos_sim/truncated` apart (`next.done` is their or),
and the CRC32 of every frame that went into a video (`cosmos_sim/pixels_crc`); the manifest is in
`meta/cosmos_sim.json`.

Import (`cosmos-sim data import --format lerobot DIR OUT`). Our own export (`meta/cosmos_sim.json` and the
episode columns above) comes back array for array, metadata and manifest too: its T rows are the T steps and
the stored final frame, state and camera make frame T+1. Pixels are exact when the export was lossless (a
frame whose CRC then differs is corruption and refused); after a lossy export they come back within H.264's
error, and the manifest says so (`lerobot_import`: how many frames differ).

Any other v3.0 dataset maps as follows. A LeRobot episode of N rows holds N frames and N actions; ours hold
T+1 frames and T actions. We keep the N frames and drop the last row's action (with its `next.*`): T = N - 1,
step t goes from frame t to t+1 with row t's action, `next.reward` and `next.done`/`next.success` (an episode of
one row has no step and is skipped). The last step is `terminated` where its row says done and `truncated`
otherwise (the recording stopped there). Without `next.reward` rewards are 0 (metadata `has_reward: false`);
`next.success` becomes the metadata's `step_success`. One camera per video key (or `image` feature), in the
order of `features`: several become a multi-view dataset (pixels [T+1, V, H, W, 3]); all must share one size
(or pass `--image-size N`: every frame resized to N x N). The world: `--world NAME` maps the data onto one of
ours (its state and action widths, actions already in [-1, 1], one camera: poses from our camera columns or the
world's default camera with `--default-camera`); otherwise the one our export recorded; otherwise a
`DatasetWorld` described from the features (worlds/dataset.py): state width from `observation.state`'s shape
(entries from its `names`), actions from `action` mapped linearly from the range the data spans onto [-1, 1],
the control rate from `fps`, a nominal camera pose per view. It has no simulator: train a world model on it and
compare that open loop against the data (`cosmos-sim compare --model RUN --data DIR`); reward, termination and
success heads are learned from the data. Seeds are the episode indices.

Features we do not need (strings, audio, depth maps, other observations) are ignored and listed in the
manifest's `source.ignored_features`; a needed one that is missing or unusable (`action` and
`observation.state`: numbers; `next.*`: a number or flag per row; cameras: decodable video or images) is a
typed error naming the file and the feature. So is a missing `meta/info.json`, another `codebase_version`, a
video with fewer decodable frames than its rows, or a video ffmpeg cannot read. The output appears whole or
not at all (staged beside it, renamed into place).

The code: `lerobot_format` (layout constants, configs, `lerobot_features`), `lerobot_export`, `lerobot_read` (what a
dataset holds, its rows and frames) and `lerobot_import`; their public names are importable from here.
"""

from cosmos_sim.data.lerobot_export import export_lerobot
from cosmos_sim.data.lerobot_format import (
    LEROBOT_CHUNK_FILE,
    LEROBOT_DATA_PATH,
    LEROBOT_EPISODES_PATH,
    LEROBOT_QUANTILES,
    LEROBOT_STAT_FRAMES,
    LEROBOT_VERSION,
    LEROBOT_VIDEO_KEY,
    LEROBOT_VIDEO_PATH,
    LEROBOT_VIEW_KEY,
    LeRobotExportConfig,
    LeRobotImportConfig,
    camera_keys,
    lerobot_features,
)
from cosmos_sim.data.lerobot_import import dataset_world_for, import_lerobot

__all__ = ["export_lerobot", "import_lerobot", "lerobot_features", "camera_keys", "dataset_world_for",
           "LeRobotExportConfig", "LeRobotImportConfig", "LEROBOT_VERSION", "LEROBOT_CHUNK_FILE", "LEROBOT_DATA_PATH",
           "LEROBOT_VIDEO_PATH", "LEROBOT_EPISODES_PATH", "LEROBOT_VIDEO_KEY", "LEROBOT_VIEW_KEY", "LEROBOT_QUANTILES",
           "LEROBOT_STAT_FRAMES"]
