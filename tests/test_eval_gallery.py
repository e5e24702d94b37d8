"""Gallery embedding cache of deid_eval: persistence, and worker processes giving the serial results."""
import numpy as np
import pytest

from deid_eval.attackers import make_attacker
from deid_eval.embedding_cache import EmbeddingCache
from deid_eval.faces import load_face_folder
from deid_eval.gallery_workers import fill_in_parallel


def test_cache_persists_embeddings_and_missing_faces(tmp_path):
    cache = EmbeddingCache(tmp_path, "sface", tmp_path / "faces")
    cache.store(["A/a.jpg", "B/b.jpg"], [np.arange(128, dtype=np.float32), None])
    cache.save()
    again = EmbeddingCache(tmp_path, "sface", tmp_path / "faces")
    assert again.missing(["A/a.jpg", "B/b.jpg", "C/c.jpg"]) == ["C/c.jpg"]
    matrix, found = again.matrix(["B/b.jpg", "A/a.jpg"])
    assert found.tolist() == [False, True]
    assert np.array_equal(matrix[1], np.arange(128)) and not matrix[0].any()
    # Another attacker or folder never shares the file.
    assert EmbeddingCache(tmp_path, "dlib", tmp_path / "faces").missing(["A/a.jpg"]) == ["A/a.jpg"]


@pytest.mark.shared_data
def test_worker_processes_give_the_embeddings_of_the_serial_path(shared_data, tmp_path):
    faces = load_face_folder(shared_data / "faces" / "lfw")
    names = faces.names[:: max(1, len(faces.names) // 6)][:6]
    serial = EmbeddingCache(tmp_path / "serial", "mobilefacenet", faces.root)
    serial.fill(names, make_attacker("mobilefacenet", threads=1).embed)
    parallel = {"mobilefacenet": EmbeddingCache(tmp_path / "parallel", "mobilefacenet", faces.root)}
    fill_in_parallel(parallel, names, workers=2)
    expected, expected_found = serial.matrix(names)
    got, got_found = EmbeddingCache(tmp_path / "parallel", "mobilefacenet", faces.root).matrix(names)
    assert expected_found.all() and np.array_equal(got_found, expected_found)
    assert np.abs(got - expected).max() < 1e-5
