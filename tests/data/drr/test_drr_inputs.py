"""vertx-drr inputs: grids, numberings, label tables, structure-mask folders, manifests, layouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")

from drr_synthetic import make_phantom  # noqa: E402

from vertxnet.data.drr import find_cases, load_ct, read_label_table, read_manifest  # noqa: E402
from vertxnet.data.drr.numbering import TOTALSEGMENTATOR, VERSE  # noqa: E402
from vertxnet.errors import InputError  # noqa: E402


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    return make_phantom(tmp_path_factory.mktemp("ct"))


def _relabelled(phantom, path: Path, mapping: dict[int, int], affine=None, shape=None) -> Path:
    image = nib.load(phantom.labels)
    data = np.asarray(image.dataobj)
    out = np.zeros(data.shape if shape is None else shape, np.int16)
    view = out[: data.shape[0], : data.shape[1], : data.shape[2]]
    for old, new in mapping.items():
        view[data[: view.shape[0], : view.shape[1], : view.shape[2]] == old] = new
    nib.save(nib.Nifti1Image(out, image.affine if affine is None else affine), path)
    return path


def test_verse_labels_load_with_their_names(phantom):
    vol = load_ct(phantom.ct, phantom.labels, "verse")
    assert vol.vertebrae == dict(zip(phantom.values, phantom.levels))
    assert vol.numbering == "verse" and vol.hu.dtype == np.float32
    assert vol.hu.shape == vol.labels.shape


def test_label_map_on_another_grid_is_an_error_naming_it(phantom, tmp_path):
    image = nib.load(phantom.labels)
    shifted = image.affine.copy()
    shifted[0, 3] += 4.0
    moved = _relabelled(phantom, tmp_path / "moved.nii.gz", {v: v for v in phantom.values}, affine=shifted)
    with pytest.raises(InputError) as err:
        load_ct(phantom.ct, moved, "verse")
    assert err.value.path == str(moved) and "affine" in err.value.reason
    bigger = _relabelled(phantom, tmp_path / "bigger.nii.gz", {v: v for v in phantom.values},
                         shape=tuple(n + 2 for n in image.shape))
    with pytest.raises(InputError) as err:
        load_ct(phantom.ct, bigger, "verse")
    assert err.value.path == str(bigger) and "shape" in err.value.reason


def test_unknown_numbering_is_an_error_naming_the_labels(phantom):
    with pytest.raises(InputError) as err:
        load_ct(phantom.ct, phantom.labels, "nnunet-spine")
    assert err.value.path == str(phantom.labels) and "numbering" in err.value.reason
    with pytest.raises(InputError) as err:  # labels.nii.gz says nothing about its numbering
        load_ct(phantom.ct, phantom.labels, "auto")
    assert err.value.path == str(phantom.labels)


def test_values_that_do_not_fit_the_numbering_are_errors(phantom, tmp_path):
    totalseg = _relabelled(phantom, tmp_path / "ts.nii.gz", {19: 32, 20: 31, 21: 30, 22: 29})
    with pytest.raises(InputError, match="not VerSe"):
        load_ct(phantom.ct, totalseg, "verse")
    vol = load_ct(phantom.ct, totalseg, "totalsegmentator")
    assert sorted(vol.vertebrae.values()) == sorted(phantom.levels)
    organs = _relabelled(phantom, tmp_path / "organs.nii.gz", {19: 5, 20: 6})
    with pytest.raises(InputError, match="no vertebra"):
        load_ct(phantom.ct, organs, "totalsegmentator")


def test_numberings_name_the_levels():
    assert VERSE[1] == "C1" and VERSE[8] == "T1" and VERSE[20] == "L1" and VERSE[24] == "L5"
    assert VERSE[25] == "L6" and VERSE[26] == "sacrum" and VERSE[28] == "T13"
    assert TOTALSEGMENTATOR[25] == "sacrum" and TOTALSEGMENTATOR[26] == "S1" and TOTALSEGMENTATOR[27] == "L5"
    assert TOTALSEGMENTATOR[50] == "C1" and TOTALSEGMENTATOR[43] == "T1"


def test_label_table_csv(phantom, tmp_path):
    table = tmp_path / "structures.csv"
    table.write_text("group,original_idx,structure,id\norgans,1,spleen,1\nvertebrae,1,sacrum,25\n"
                     "vertebrae,8,vertebrae_T12,40\nvertebrae,7,vertebrae_L1,41\nvertebrae,6,vertebrae_L2,42\n"
                     "vertebrae,5,vertebrae_L3,43\n")
    assert read_label_table(table) == {25: "sacrum", 40: "T12", 41: "L1", 42: "L2", 43: "L3"}
    labels = _relabelled(phantom, tmp_path / "labels.nii.gz", {19: 40, 20: 41, 21: 42, 22: 43})
    vol = load_ct(phantom.ct, labels, "auto")  # structures.csv beside the map
    assert sorted(vol.vertebrae.values()) == sorted(phantom.levels)
    bad = tmp_path / "bad.csv"
    bad.write_text("name,colour\nL1,red\n")
    with pytest.raises(InputError) as err:
        read_label_table(bad)
    assert err.value.path == str(bad)


def test_folder_of_structure_masks(phantom, tmp_path):
    image = nib.load(phantom.labels)
    data = np.asarray(image.dataobj)
    seg = tmp_path / "s0001" / "segmentations"
    seg.mkdir(parents=True)
    for value, level in zip(phantom.values, phantom.levels):
        nib.save(nib.Nifti1Image((data == value).astype(np.uint8), image.affine), seg / f"vertebrae_{level}.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros(data.shape, np.uint8), image.affine), seg / "liver.nii.gz")
    (tmp_path / "s0001" / "ct.nii.gz").write_bytes(Path(phantom.ct).read_bytes())
    vol = load_ct(tmp_path / "s0001" / "ct.nii.gz", seg)
    assert sorted(vol.vertebrae.values()) == sorted(phantom.levels)
    cases = find_cases(tmp_path)
    assert [(c.name, c.labels) for c in cases] == [("s0001", seg)]


def test_manifest_and_verse_layout(phantom, tmp_path):
    subject = tmp_path / "verse" / "sub-verse999"
    subject.mkdir(parents=True)
    (subject / "sub-verse999_ct.nii.gz").write_bytes(Path(phantom.ct).read_bytes())
    (subject / "sub-verse999_seg-vert_msk.nii.gz").write_bytes(Path(phantom.labels).read_bytes())
    cases = find_cases(tmp_path / "verse")
    assert [(c.name, c.numbering) for c in cases] == [("sub-verse999", "verse")]
    manifest = tmp_path / "cases.csv"
    manifest.write_text("name,ct,labels,numbering\nv,verse/sub-verse999/sub-verse999_ct.nii.gz,"
                        "verse/sub-verse999/sub-verse999_seg-vert_msk.nii.gz,verse\n")
    (case,) = read_manifest(manifest)
    assert case.ct == subject / "sub-verse999_ct.nii.gz" and case.numbering == "verse"
    broken = tmp_path / "broken.csv"
    broken.write_text("image,mask\na,b\n")
    with pytest.raises(InputError) as err:
        read_manifest(broken)
    assert err.value.path == str(broken)


def test_a_file_that_is_no_nifti_is_an_error_naming_it(phantom, tmp_path):
    junk = tmp_path / "ct.nii.gz"
    junk.write_bytes(b"not a volume")
    with pytest.raises(InputError) as err:
        load_ct(junk, phantom.labels, "verse")
    assert err.value.path == str(junk)
    with pytest.raises(InputError, match="not found"):
        load_ct(tmp_path / "missing.nii.gz", phantom.labels, "verse")
