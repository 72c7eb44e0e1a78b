"""One way for lessons 03-05 to get the sample identities' faces when lesson 02 has not run."""

import pytest

from helpers.data import list_faces
from helpers.faces import ensure_sample_faces, read_index, sample_every
from helpers.faces.sample_faces import SAMPLE_FRAMES


def test_every_sample_identity_gets_about_the_same_number_of_frames_from_the_whole_video():
    for frame_count in (72, 270, 472):  # man.mp4, megamind.avi, woman.mp4
        every = sample_every(frame_count)
        searched = len(range(0, frame_count, every))
        assert SAMPLE_FRAMES * 0.85 <= searched <= SAMPLE_FRAMES
        assert (searched - 1) * every >= frame_count * 0.9  # spread to the end of the clip, not its first seconds
    assert sample_every(5) == 1
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="frames must be a whole number"):
            sample_every(100, bad)


def test_missing_sample_faces_are_cropped_once_and_other_names_are_explained(samples, tmp_path):
    root = tmp_path / "faces"
    report = ensure_sample_faces(root, ["man"], samples["man.mp4"].parent, frames=6)
    assert report["man"].kept >= 1 and list_faces(root / "man")
    assert {r["frame"] for r in read_index(root / "man")} == {str(i) for i in range(0, 72, 12)}
    assert ensure_sample_faces(root, ["man"], samples["man.mp4"].parent) == {"man": "present"}
    with pytest.raises(FileNotFoundError, match="notebooks 01 and 02 for 'drag'"):
        ensure_sample_faces(root, ["drag"], samples["man.mp4"].parent)
    with pytest.raises(ValueError, match="frames must be"):
        ensure_sample_faces(root, ["woman"], samples["man.mp4"].parent, frames=0)
    assert not (root / "woman").exists()
