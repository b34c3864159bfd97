"""Object masks: pixels where a frame differs from the empty scene seen by the same camera. They live in
`cosmos_sim.frame_metrics`, below training and evaluation, since the tokenizer's training masks its held-out
frames too.
"""

from cosmos_sim.frame_metrics import BackgroundRenderer, MedianBackground, background_renderer, pose_key

__all__ = ["BackgroundRenderer", "MedianBackground", "background_renderer", "pose_key"]
