"""Image sets: labels from CSV, wnid names or synset files; seeded subsets; safe zip uploads."""

from __future__ import annotations

import io
import zipfile

import pytest

from rsviz.images import synthetic_image
from rsviz.imagesets import (ImageSetError, ImageSetSpec, extract_zip, from_folder, from_samples,
                             from_zip, read_labels)


def _png(seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    synthetic_image(32, seed).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def folder(tmp_path):
    for i in range(6):
        (tmp_path / f"img{i}.png").write_bytes(_png(i))
    (tmp_path / "labels.csv").write_text(
        "filename,class_index,wnid,name\n" + "".join(f"img{i}.png,{i % 3},,c{i % 3}\n"
                                                      for i in range(6)))
    return tmp_path


def test_folder_with_labels_csv(folder):
    images = from_folder(folder)
    assert [e.name for e in images.entries] == [f"img{i}.png" for i in range(6)]
    assert [e.label for e in images.entries] == [0, 1, 2, 0, 1, 2]
    assert images.entries[1].class_name == "c1"
    x = images.tensors(32)[0]
    assert x.shape == (3, 32, 32) and 0 <= float(x.min()) and float(x.max()) <= 1


def test_labels_csv_without_header_and_explicit_path(tmp_path, folder):
    other = tmp_path / "other.csv"
    other.write_text("img0.png,7\nimg1.png,8\n")
    images = from_folder(folder, labels=other)
    assert [(e.name, e.label) for e in images.entries] == [("img0.png", 7), ("img1.png", 8)]
    assert len(images.notes) == 4  # the four unlabelled images are reported, not silently used


def test_wnid_file_names_with_wnid_order_from_csv(tmp_path):
    images_dir = tmp_path / "imgs"
    images_dir.mkdir()
    (images_dir / "n01491361_123.JPEG").write_bytes(_png(1))
    (images_dir / "n01440764").mkdir()
    (images_dir / "n01440764" / "a.png").write_bytes(_png(2))
    mapping = tmp_path / "LOC_synset_mapping.txt"
    mapping.write_text("n01440764 tench, Tinca tinca\nn01443537 goldfish\n"
                       "n01484850 great white shark\nn01491361 tiger shark\n")
    images = from_folder(images_dir, labels=mapping)
    assert {(e.name, e.label, e.class_name) for e in images.entries} == {
        ("n01491361_123.JPEG", 3, "tiger shark"), ("n01440764/a.png", 0, "tench")}
    csv_map = tmp_path / "wnids.csv"
    csv_map.write_text("filename,class_index,wnid,name\nx.JPEG,3,n01491361,tiger shark\n")
    assert [e.label for e in from_folder(images_dir, labels=csv_map).entries] == [3]


def test_missing_labels_is_a_clear_error(tmp_path):
    (tmp_path / "a.png").write_bytes(_png())
    with pytest.raises(ImageSetError, match="no labels"):
        from_folder(tmp_path)
    with pytest.raises(ImageSetError, match="no such folder"):
        from_folder(tmp_path / "absent")
    bad = tmp_path / "bad.csv"
    bad.write_text("filename,class_index\na.png,cat\n")
    with pytest.raises(ImageSetError, match="not an integer"):
        read_labels(bad)


def test_seeded_subset(folder):
    images = from_folder(folder)
    a, b, c = images.subset(3, seed=1), images.subset(3, seed=1), images.subset(3, seed=2)
    assert len(a) == 3 and a.entries == b.entries
    assert [e.name for e in a.entries] == sorted(e.name for e in a.entries)  # order kept
    assert any(a.entries != images.subset(3, seed=s).entries for s in range(2, 12))
    assert c.entries != () and images.subset(None) is images and images.subset(10) is images


def test_spec_resolves_relative_folder(folder):
    spec = ImageSetSpec(source="folder", folder=".", subset=2, seed=0)
    assert len(spec.resolve(base=folder)) == 2


def test_samples_match_imagenet_names():
    images = from_samples()
    by_name = {e.name: e for e in images.entries}
    assert by_name["coffee"].class_name == "espresso" and by_name["coffee"].label == 967
    assert by_name["chelsea"].label == 282  # tiger cat
    assert "astronaut" not in by_name  # no ImageNet class: skipped with a note
    assert any("astronaut" in note for note in images.notes)


def _zip(members: dict[str, bytes], symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (0o120777 << 16)
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def test_zip_upload_keeps_images_and_labels(tmp_path):
    data = _zip({"set/a.png": _png(1), "set/b.png": _png(2), "set/notes.pdf": b"%PDF-1.4",
                 "set/fake.png": b"not really a png", "set/labels.csv":
                 b"filename,class_index\na.png,1\nb.png,2\nfake.png,3\n",
                 "__MACOSX/set/._a.png": b"junk"})
    images = from_zip(data, tmp_path / "uploads", name="set.zip")
    assert [(e.name, e.label) for e in images.entries] == [("a.png", 1), ("b.png", 2)]
    assert any("notes.pdf" in n for n in images.notes)
    assert any("fake.png" in n for n in images.notes)
    assert not list((tmp_path / "uploads").rglob("notes.pdf"))
    assert not list((tmp_path / "uploads").rglob("fake.png"))
    again = from_zip(data, tmp_path / "uploads", name="set.zip")  # extracted once, reused
    assert again.entries == images.entries and again.notes == images.notes


@pytest.mark.parametrize("evil", ["../escape.png", "/abs/escape.png", "a/../../escape.png",
                                  "C:/escape.png"])
def test_zip_path_traversal_refused(tmp_path, evil):
    dest = tmp_path / "deep" / "dest"
    with pytest.raises(ImageSetError, match="refused"):
        extract_zip(_zip({"ok.png": _png(), evil: _png()}), dest)
    assert not list(tmp_path.rglob("escape.png"))


def test_zip_symlink_and_junk_refused(tmp_path):
    with pytest.raises(ImageSetError, match="refused"):
        extract_zip(_zip({"ok.png": _png()}, symlink="link.png"), tmp_path / "d")
    with pytest.raises(ImageSetError, match="not a zip"):
        extract_zip(b"PK nope", tmp_path / "e")
    with pytest.raises(ImageSetError, match="no image"):
        extract_zip(_zip({"readme.txt": b"hello"}), tmp_path / "f")


def test_zip_size_limit(tmp_path, monkeypatch):
    import rsviz.imagesets as imagesets

    monkeypatch.setattr(imagesets, "MAX_ZIP_BYTES", 1000)
    with pytest.raises(ImageSetError, match="limit"):
        extract_zip(_zip({"a.png": _png(), "big.bin": b"0" * 5000}), tmp_path / "d")
