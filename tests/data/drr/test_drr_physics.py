"""DRR physics and projection: spectra, attenuation, and the cone-beam geometry of the projector."""

from __future__ import annotations

import numpy as np
import pytest

from vertxnet.data.drr.physics import ENERGIES_KEV, MATERIALS, MU_RHO, mu_rho, primary_transmission, tube_spectrum
from vertxnet.data.drr.projector import Canvas, Pose, path_weight, plane_normal, project_planes, project_points, project_slabs, to_canvas


def test_spectrum_hardens_with_voltage_and_filtration():
    soft, hard = tube_spectrum(60, 2.5, 0.0), tube_spectrum(120, 2.5, 0.0)
    assert abs(soft.weights.sum() - 1) < 1e-9 and abs(hard.weights.sum() - 1) < 1e-9
    assert soft.energies.max() <= 60 and hard.energies.max() <= 120
    assert 30 < soft.mean_kev < hard.mean_kev < 80
    assert tube_spectrum(80, 2.5, 0.2).mean_kev > tube_spectrum(80, 2.5, 0.0).mean_kev
    with pytest.raises(ValueError):
        tube_spectrum(200, 2.5, 0.0)


def test_attenuation_follows_the_tables():
    for name, table in MU_RHO.items():
        assert np.allclose(mu_rho(name, ENERGIES_KEV), table, rtol=1e-9)
        assert np.all(np.diff(mu_rho(name, np.linspace(15, 150, 50))) < 0)  # no edge in 15-150 keV
    diagnostic = ENERGIES_KEV <= 100  # above, Compton scattering (electrons per gram) dominates both
    assert np.all(MU_RHO["bone"][diagnostic] > MU_RHO["soft"][diagnostic]) and np.all(MU_RHO["ti"] > MU_RHO["bone"])


def test_transmission_falls_with_thickness_and_bone_absorbs_more():
    spectrum = tube_spectrum(80, 3.0, 0.1)
    paths = np.zeros((1, 4, len(MATERIALS)), np.float32)
    paths[0, 1, 0] = 10.0  # 10 g/cm2 soft tissue
    paths[0, 2, 0] = 20.0
    paths[0, 3, 1] = 10.0  # 10 g/cm2 bone
    t = primary_transmission(paths, spectrum)[0]
    assert t[0] == pytest.approx(1.0) and 1 > t[1] > t[2] > 0
    assert t[3] < t[1]
    # beam hardening: the second 10 g/cm2 take less than the first
    assert t[2] / t[1] > t[1] / t[0]


def _cube_volume():
    vol = np.zeros((9, 9, 9), np.float32)
    vol[4, 4, 4] = 1.0
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-8.0, 20.0, -30.0]
    return vol, affine


@pytest.mark.parametrize("angles", [(0.0, 0.0), (9.0, 4.0), (-7.0, -3.0)])
def test_a_voxel_lands_where_its_centre_projects(angles):
    vol, affine = _cube_volume()
    a, b = np.deg2rad(angles)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    pose = Pose(rotation=ry @ rz, isocentre=np.array([0.0, 0.0, 0.0]), sod=900.0, sdd=1200.0)
    canvas = Canvas(u0=-80.0, v0=-80.0, pixel=0.5, width=320, height=320)
    centre = affine[:3, :3] @ np.array([4.0, 4.0, 4.0]) + affine[:3, 3]
    expected = to_canvas(canvas, project_points(pose, centre[None]))[0]
    slabs = np.ascontiguousarray(np.stack([vol, vol], -1).transpose(0, 2, 1, 3))  # [i, k, j, c]
    boxes = [(0, 9, 0, 9) if slabs[i].any() else None for i in range(9)]
    direct = project_planes([(i, slabs[i], b) for i, b in enumerate(boxes) if b], pose, canvas, affine, 2)[..., 0]
    shear = project_slabs(slabs, boxes, pose, canvas, affine)[..., 0]
    for image in (direct, shear):
        ys, xs = np.indices(image.shape)
        w = image.sum()
        centroid = np.array([(xs * image).sum() / w, (ys * image).sum() / w]) + 0.5  # continuous coordinates
        assert np.allclose(centroid, expected, atol=0.15), (angles, centroid, expected)
        # a voxel 2 mm wide, magnified, spreads over (2 * M / 0.5)^2 canvas pixels of weight 1
        m = pose.sdd / (pose.sod + (pose.rotation @ centre)[0])
        assert w == pytest.approx((2.0 * m / 0.5) ** 2, rel=0.06)
    assert np.abs(direct - shear).sum() / direct.sum() < 0.1


def test_oblique_rays_cross_more_tissue():
    pose = Pose(rotation=np.eye(3), isocentre=np.zeros(3), sod=1000.0, sdd=1200.0)
    canvas = Canvas(u0=-300.0, v0=-300.0, pixel=10.0, width=60, height=60)
    w = path_weight(pose, canvas, plane_normal(np.eye(4)))
    assert w[30, 30] == pytest.approx(0.1, rel=1e-3)  # central ray: 0.1 cm per mm
    corner = np.hypot(295.0, 295.0)
    assert w[0, 0] == pytest.approx(0.1 * np.hypot(1200.0, corner) / 1200.0, rel=1e-3)
