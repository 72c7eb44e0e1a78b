"""Write frames back as an H.264 MP4 with the source's sound, through PyAV.

Writing keeps what the seed lost when it stitched frames in QuickTime: every
frame at its own time (variable frame rate stays in time), the original audio
(copied, or re-encoded to AAC when MP4 cannot hold it), and a metadata tag
saying the video was altered.
"""

from __future__ import annotations

import os
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..storage import remove
from .checks import VideoError, check_count, check_crf, check_number, check_output_path


ALTERED_TAG = "altered by AI: polyjuice"
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")
VIDEO_CODECS = ("libx264", "h264", "libopenh264", "mpeg4")  # first one PyAV can encode wins
MP4_AUDIO = {"aac", "mp3", "mp3float", "alac", "ac3", "eac3"}  # copied as they are; others become AAC


def pick_video_codec(preferred: str | None = None) -> str:
    """The first H.264 encoder PyAV's ffmpeg has (its wheels ship libx264), else MPEG-4 with a warning."""
    import av

    for name in ([preferred] if preferred else []) + list(VIDEO_CODECS):
        try:
            av.codec.Codec(name, "w")
        except Exception:
            continue
        wanted = preferred or VIDEO_CODECS[0]
        if name != wanted:
            print(f"Note: the video encoder {wanted} is not in this PyAV build; writing with {name} instead.",
                  file=sys.stderr)
        return name
    raise VideoError("This PyAV build has no video encoder for MP4 (tried " + ", ".join(VIDEO_CODECS) + ")")


class _AudioCarry:
    """Moves the audio of `src` into the output as the video advances, so the file stays interleaved.

    MP4-friendly codecs are copied packet by packet (no quality loss); anything
    else is decoded and re-encoded to AAC. Packets after `end` seconds are
    dropped, so a render of the first two seconds keeps two seconds of sound.
    """

    def __init__(self, src: Path, out):
        import av

        self.input = av.open(str(src))
        self.in_stream = self.input.streams.audio[0]
        self.copy = self.in_stream.codec_context.name in MP4_AUDIO
        if self.copy:
            self.out_stream = out.add_stream_from_template(self.in_stream)
        else:
            rate = self.in_stream.codec_context.sample_rate or 44100
            self.out_stream = out.add_stream("aac", rate=rate)
            layout = self.in_stream.codec_context.layout
            self.out_stream.layout = "mono" if layout is not None and layout.nb_channels == 1 else "stereo"
            self.out_stream.format = "fltp"
            self.resampler = av.AudioResampler(format="fltp", layout=self.out_stream.layout, rate=rate)
            self.fifo = av.AudioFifo()
            self.next_sample = None  # pts of the next chunk, in samples
        self.out = out
        self.packets = self.input.demux(self.in_stream)
        self.pending = None  # a packet read ahead of the video
        self.done = False

    def _next_packet(self):
        if self.pending is not None:
            packet, self.pending = self.pending, None
            return packet
        for packet in self.packets:
            if packet.dts is not None:
                return packet
        self.done = True
        return None

    def until(self, seconds: float) -> None:
        """Write the audio that starts before `seconds`."""
        while not self.done:
            packet = self._next_packet()
            if packet is None:
                break
            start = float((packet.pts if packet.pts is not None else packet.dts) * packet.time_base)
            if start >= seconds:
                self.pending = packet
                break
            if self.copy:
                packet.stream = self.out_stream
                self.out.mux(packet)
            else:
                for frame in packet.decode():
                    self._encode(frame)

    def _encode(self, frame) -> None:
        rate = self.out_stream.codec_context.sample_rate
        for f in self.resampler.resample(frame):
            if self.next_sample is None:  # the sound may start a little after the picture: keep that offset
                self.next_sample = max(0, int(round(f.pts * f.time_base * rate))) if f.pts is not None and f.time_base else 0
            # WebM/MKV store times in milliseconds, so decoded Opus/Vorbis stamps are off by a sample now
            # and then; the fifo refuses such gaps. The samples themselves are contiguous: count them instead.
            f.pts = None
            self.fifo.write(f)
        size = self.out_stream.codec_context.frame_size or 1024
        while self.fifo.samples >= size or (frame is None and self.fifo.samples):
            chunk = self.fifo.read(min(size, self.fifo.samples))
            chunk.pts, chunk.time_base = self.next_sample, Fraction(1, rate)
            self.next_sample += chunk.samples
            for packet in self.out_stream.encode(chunk):
                self.out.mux(packet)

    def close(self) -> None:
        if not self.copy:
            self._encode(None)
            for packet in self.out_stream.encode(None):
                self.out.mux(packet)
        self.input.close()


class VideoWriter:
    """Write RGB frames as an H.264 MP4 at the times you give, with another file's audio.

        with VideoWriter("out.mp4", 640, 360, audio_from="in.mp4") as w:
            for f in iter_frames("in.mp4"):
                w.write(f.image, f.time, f.duration)

    The file appears under its name only once it is complete (written to a
    temporary name first), so an interrupted render never leaves a broken
    MP4 that looks finished.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        width: int,
        height: int,
        rate: float = 30.0,
        audio_from: str | os.PathLike | None = None,
        metadata: dict | None = None,
        crf: int = 18,
        preset: str = "veryfast",
        codec: str | None = None,
        time_base: Fraction = Fraction(1, 90000),
        rotation: int = 0,
    ):
        import av

        check_count("width", width)
        check_count("height", height)
        check_number("rate (frames per second)", rate, allow_none=True)
        check_crf(crf)
        if preset not in X264_PRESETS:
            raise ValueError(f"preset must be one of {X264_PRESETS}; got {preset!r}")
        if audio_from is not None and not Path(audio_from).is_file():
            raise VideoError(f"audio_from is not a file: {audio_from}")
        self.path = check_output_path(path, "the video file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.stem}.part{self.path.suffix or '.mp4'}")
        self.width, self.height = int(width), int(height)
        self.rate = Fraction(rate).limit_denominator(1001) if rate else Fraction(30)
        self.time_base = time_base
        self.audio = None
        self.container = av.open(str(self.tmp), "w", format="mp4", options={"movflags": "+faststart"})
        try:
            self._setup(metadata, crf, preset, codec, time_base, rotation, audio_from)
        except BaseException:
            self.abort()  # never leave the temporary file behind
            raise
        self.frames = 0
        self.end = 0.0  # time the last frame stops being shown
        self.last_pts = -1
        self.durations = {}  # pts -> duration of frames still inside the encoder

    def _setup(self, metadata, crf, preset, codec, time_base, rotation, audio_from) -> None:
        import av

        for key, value in (metadata or {}).items():
            self.container.metadata[key] = str(value)
        self.codec = pick_video_codec(codec)
        if self.codec == "mpeg4" and time_base.denominator > 65535:
            self.time_base = time_base = Fraction(1, 30000)  # MPEG-4 part 2 allows no finer clock
        self.stream = self.container.add_stream(self.codec, rate=self.rate)
        # H.264 in yuv420p needs even sizes; an odd edge is padded by one pixel
        self.stream.width, self.stream.height = self.width + self.width % 2, self.height + self.height % 2
        self.stream.pix_fmt = "yuv420p"
        if rotation:  # store a display matrix, as phones do (for making test clips)
            self.stream.set_display_rotation(rotation)
        self.stream.codec_context.time_base = time_base
        self.stream.time_base = time_base
        # no B-frames: decode order = display order, so MP4 needs no edit list and
        # keeps exact durations even with a variable frame rate
        self.stream.codec_context.max_b_frames = 0
        # a key frame every two seconds, so frames_at() can seek into a long render cheaply
        self.stream.codec_context.gop_size = max(1, int(round(2 * float(self.rate))))
        if self.codec == "libx264":
            self.stream.options = {"crf": str(crf), "preset": preset}
        else:
            self.stream.bit_rate = 8 * self.width * self.height  # ~ generous for MPEG-4 part 2
        if audio_from is not None:
            try:
                with av.open(str(audio_from)) as probe_src:
                    has_audio = bool(probe_src.streams.audio)
            except (av.error.FFmpegError, OSError) as exc:
                raise VideoError(f"Cannot read the sound of {audio_from} ({exc})") from exc
            if has_audio:
                self.audio = _AudioCarry(Path(audio_from), self.container)

    def write(self, image: np.ndarray, time: float | None = None, duration: float | None = None) -> None:
        """Encode one RGB uint8 frame shown at `time` seconds (default: right after the previous one)."""
        import av

        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            what = f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
            raise ValueError(f"frames must be RGB uint8 arrays (height, width, 3); got a {what}")
        check_number("time", time, -np.inf, allow_none=True)
        check_number("duration", duration, 0.0, strict=False, allow_none=True)
        if image.shape[:2] != (self.height, self.width):
            raise ValueError(f"frame is {image.shape[1]}x{image.shape[0]}, writer expects {self.width}x{self.height}")
        if time is None:
            time = self.end
        duration = duration if duration else 1 / float(self.rate)
        if (self.stream.width, self.stream.height) != (self.width, self.height):
            image = np.pad(image, ((0, self.stream.height - self.height), (0, self.stream.width - self.width), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        pts = int(round(time / self.time_base))
        pts = max(pts, self.last_pts + 1)  # timestamps must increase, even after rounding
        frame.pts, frame.time_base = pts, self.time_base
        frame.duration = max(1, int(round(duration / self.time_base)))
        self.durations[pts] = frame.duration
        self.last_pts = pts
        if self.audio is not None:
            self.audio.until(time)  # interleave: the sound that belongs before this frame
        for packet in self.stream.encode(frame):
            self._mux_video(packet)
        self.frames += 1
        self.end = float(pts * self.time_base) + duration

    def _mux_video(self, packet) -> None:
        # encoders stamp every packet with 1/rate; put back each frame's own duration,
        # or the last frame of a variable-rate clip would last the wrong time
        duration = self.durations.pop(packet.pts, None)
        if duration is not None and packet.time_base == self.time_base:
            packet.duration = duration
        self.container.mux(packet)

    def close(self, audio_end: float | None = None) -> Path:
        """Flush the encoder, add the rest of the audio (up to `audio_end` seconds if given), publish the file.

        Pass `audio_end=writer.end` when you wrote only the start of a video,
        so the sound stops with the picture.
        """
        try:
            for packet in self.stream.encode(None):
                self._mux_video(packet)
            if self.audio is not None:
                self.audio.until(float("inf") if audio_end is None else audio_end)
                self.audio.close()
                self.audio = None
            self.container.close()
            os.replace(self.tmp, self.path)
        except BaseException:
            self.abort()  # a half-written file never appears under the real name, and no temporary file stays
            raise
        return self.path

    def abort(self) -> None:
        """Close without publishing: the temporary file is removed."""
        for close in ((self.audio.input.close,) if self.audio is not None else ()) + (self.container.close,):
            try:
                close()
            except Exception:
                pass
        remove(self.tmp)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
