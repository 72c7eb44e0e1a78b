"""Read any phone video upright and write one back with its sound, through PyAV.

    read.py    probe, iter_frames, frames_at, metadata: upright frames at their own times
    write.py   VideoWriter: H.264 MP4 at the frames' times, the source's sound carried along
    clip.py    write_clip: small test and demo clips (rotation tag, tone, any codec)
    checks.py  the argument checks the reader, writer and renderer share

`from helpers.video import X` works for all of them.
"""

from .checks import VideoError, check_count, check_crf, check_number, check_output_path
from .clip import AUDIO_RATES, write_clip
from .read import Frame, VideoInfo, frames_at, iter_frames, metadata, probe, upright
from .write import ALTERED_TAG, MP4_AUDIO, VIDEO_CODECS, X264_PRESETS, VideoWriter, pick_video_codec

__all__ = [
    "ALTERED_TAG", "AUDIO_RATES", "Frame", "MP4_AUDIO", "VIDEO_CODECS", "VideoError", "VideoInfo", "VideoWriter",
    "X264_PRESETS", "check_count", "check_crf", "check_number", "check_output_path", "frames_at", "iter_frames",
    "metadata", "pick_video_codec", "probe", "upright", "write_clip",
]
