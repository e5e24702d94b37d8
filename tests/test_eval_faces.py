"""Probes and gallery of deid_eval from a face folder in LFW layout."""
import json

import numpy as np
import pytest

from deid_eval.faces import eval_identities, identification_set, load_face_folder


@pytest.fixture()
def folder(tmp_path):
    counts = {"Ann": 3, "Bob": 2, "Cid": 1, "Dee": 4, "Eve": 1}
    for name, count in counts.items():
        (tmp_path / name).mkdir()
        for index in range(1, count + 1):
            (tmp_path / name / f"{name}_{index:04d}.jpg").write_bytes(b"")
    (tmp_path / "Empty").mkdir()
    return tmp_path


def test_folder_lists_identities_with_images_only(folder):
    faces = load_face_folder(folder)
    assert faces.identities == ["Ann", "Bob", "Cid", "Dee", "Eve"]
    assert len(faces.names) == 11 and faces.names[0] == "Ann/Ann_0001.jpg"


def test_eval_identities_come_from_the_splits_file_when_given(folder, tmp_path_factory):
    faces = load_face_folder(folder)
    assert eval_identities(faces, None) == ["Ann", "Bob", "Dee"]
    splits = tmp_path_factory.mktemp("splits") / "splits.json"
    splits.write_text(json.dumps({"eval_identities": ["Dee", "Cid", "Ann", "Zed"]}))
    # Cid has one photo (no mate for the gallery) and Zed is absent: both are left out.
    assert eval_identities(faces, splits) == ["Dee", "Ann"]


def test_probe_is_the_first_photo_and_the_gallery_holds_everything_else(folder):
    faces = load_face_folder(folder)
    split = identification_set(faces, ["Ann", "Dee"], identity_limit=None, gallery_limit=None)
    assert [faces.names[i] for i in split.probes] == ["Ann/Ann_0001.jpg", "Dee/Dee_0001.jpg"]
    # Every photo is in the gallery; a probe's own photo is left out only when that probe is ranked.
    assert np.array_equal(split.gallery, np.arange(11))


def test_gallery_limit_keeps_the_probes_identities_and_samples_distractors(folder):
    faces = load_face_folder(folder)
    split = identification_set(faces, ["Ann", "Dee"], identity_limit=None, gallery_limit=9, seed=3)
    names = [faces.names[i] for i in split.gallery]
    assert len(names) == 9
    assert sum(n.startswith(("Ann/", "Dee/")) for n in names) == 7
    again = identification_set(faces, ["Ann", "Dee"], identity_limit=None, gallery_limit=9, seed=3)
    assert np.array_equal(split.gallery, again.gallery)
