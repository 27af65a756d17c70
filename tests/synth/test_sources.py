"""Half-space sources against closed forms, Okada's published check list and cutde (test-only oracle)."""

from __future__ import annotations

import numpy as np
import pytest

from geodiff.errors import GeodiffError
from geodiff.synth import mogi, okada, penny_crack, point_crack, sneddon_volume

cutde_hs = pytest.importorskip("cutde.halfspace")


def _rect_triangles(xc, yc, depth, strike, dip, length, width):
    """A centroid-parameterised rectangle as two triangles, vertices built independently of okada()."""
    s, d = np.deg2rad(strike), np.deg2rad(dip)
    along = np.array([np.sin(s), np.cos(s), 0.0])
    updip = np.cos(d) * np.array([-np.cos(s), np.sin(s), 0.0]) + np.array([0.0, 0.0, np.sin(d)])
    c = np.array([xc, yc, -depth])
    p = [c + a * length / 2 * along + b * width / 2 * updip for a, b in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
    return np.array([[p[0], p[1], p[2]], [p[0], p[2], p[3]]])


def _cutde(obs_xy, tris, slip_vector, nu=0.25):
    obs = np.column_stack([obs_xy[0], obs_xy[1], np.zeros(obs_xy[0].size)])
    mat = cutde_hs.disp_matrix(obs, tris, nu)
    return np.einsum("oitj,tj->oi", mat, np.broadcast_to(slip_vector, (tris.shape[0], 3)))


# ---------------------------------------------------------------- Mogi


def test_mogi_uplift_above_source_matches_closed_form():
    for depth, dV, nu in [(3000.0, 1e6, 0.25), (500.0, -2e5, 0.3)]:
        ue, un, uz = mogi(0.0, 0.0, xcen=0.0, ycen=0.0, depth=depth, dV=dV, nu=nu)
        assert uz == pytest.approx((1 - nu) * dV / (np.pi * depth**2), rel=1e-12)
        assert ue == 0 and un == 0


def test_mogi_is_radially_symmetric_and_decays():
    theta = np.linspace(0, 2 * np.pi, 13)
    r = 2500.0
    ue, un, uz = mogi(100 + r * np.cos(theta), -50 + r * np.sin(theta), xcen=100, ycen=-50, depth=2000, dV=1e6)
    np.testing.assert_allclose(uz, uz[0], rtol=1e-12)
    np.testing.assert_allclose(np.hypot(ue, un), np.hypot(ue[0], un[0]), rtol=1e-12)
    # Radial, outward for inflation: the horizontal vector is parallel to (cos, sin).
    np.testing.assert_allclose(ue * np.sin(theta) - un * np.cos(theta), 0, atol=1e-15)
    # Horizontal / vertical = r / depth everywhere (Mogi 1958).
    np.testing.assert_allclose(np.hypot(ue, un) / uz, r / 2000, rtol=1e-12)
    # Far field: uz ~ depth / r^3.
    far = mogi(np.array([1e5, 2e5]), 0.0, xcen=0, ycen=0, depth=2000, dV=1e6)[2]
    assert far[0] / far[1] == pytest.approx(8.0, rel=1e-3)


def test_mogi_rejects_bad_input():
    with pytest.raises(GeodiffError, match="depth"):
        mogi(0, 0, xcen=0, ycen=0, depth=-1.0, dV=1.0)
    with pytest.raises(GeodiffError, match="Poisson"):
        mogi(0, 0, xcen=0, ycen=0, depth=1.0, dV=1.0, nu=0.6)


# ---------------------------------------------------------------- Okada


def _okada_table(x, y, d, dip, length, width, **kw):
    """Okada's (1985) frame: strike along +x (east), reference corner at the origin, d = bottom depth."""
    sd, cd = np.sin(np.deg2rad(dip)), np.cos(np.deg2rad(dip))
    return okada(x, y, xcen=length / 2, ycen=width / 2 * cd, depth=d - width / 2 * sd, strike=90.0, dip=dip,
                 length=length, width=width, nu=0.25, **kw)


@pytest.mark.parametrize(
    ("case", "kw", "expected"),
    [
        # Okada (1985) Table 2 check list, ux, uy, uz for unit dislocations, lambda = mu.
        ((2.0, 3.0, 4.0, 70.0), {"slip": 1.0, "rake": 0.0}, (-8.689e-3, -4.298e-3, -2.747e-3)),
        ((2.0, 3.0, 4.0, 70.0), {"slip": 1.0, "rake": 90.0}, (-4.682e-3, -3.527e-2, -3.564e-2)),
        ((2.0, 3.0, 4.0, 70.0), {"opening": 1.0}, (-2.660e-4, +1.056e-2, +3.214e-3)),
        ((0.0, 0.0, 4.0, 90.0), {"slip": 1.0, "rake": 0.0}, (0.0, +5.253e-3, 0.0)),
        ((0.0, 0.0, 4.0, 90.0), {"slip": 1.0, "rake": 90.0}, (0.0, 0.0, 0.0)),
        ((0.0, 0.0, 4.0, 90.0), {"opening": 1.0}, (+1.223e-2, 0.0, -1.606e-2)),
        ((0.0, 0.0, 6.0, 90.0), {"slip": 1.0, "rake": 180.0}, (0.0, -1.303e-3, 0.0)),
        ((0.0, 0.0, 6.0, 90.0), {"opening": 1.0}, (+3.507e-3, 0.0, -7.740e-3)),
    ],
)
def test_okada_reproduces_published_check_list(case, kw, expected):
    x, y, d, dip = case
    got = np.array(_okada_table(x, y, d, dip, 3.0, 2.0, **kw))
    expected = np.array(expected)
    # The table prints four significant digits: agree to half a unit of the last one.
    digits = np.floor(np.log10(np.abs(np.where(expected == 0, 1e-12, expected))))
    half_unit = np.where(expected == 0, 1e-12, 0.5 * 10.0 ** (digits - 3))
    assert np.all(np.abs(got - expected) <= half_unit * 1.0001), (got, expected)


@pytest.mark.parametrize(("strike", "dip"), [(30.0, 60.0), (0.0, 90.0), (120.0, 0.01), (200.0, 30.0), (300.0, 89.9)])
@pytest.mark.parametrize("mode", [0, 1, 2])
def test_okada_matches_cutde_triangles(strike, dip, mode):
    rng = np.random.default_rng(7)
    obs = rng.uniform(-20e3, 20e3, (2, 150))
    geom = dict(xcen=1000.0, ycen=-500.0, depth=5000.0, strike=strike, dip=dip, length=8000.0, width=4000.0)
    kw = [{"slip": 1.0, "rake": 0.0}, {"slip": 1.0, "rake": 90.0}, {"opening": 1.0}][mode]
    mine = np.column_stack(okada(obs[0], obs[1], **geom, **kw))
    tris = _rect_triangles(1000.0, -500.0, 5000.0, strike, dip, 8000.0, 4000.0)
    ref = _cutde(obs, tris, np.eye(3)[mode])
    # Near-vertical dips lose a few digits to the 1/cos(dip) terms of Okada's I-integrals.
    np.testing.assert_allclose(mine, ref, atol=1e-7 * np.abs(ref).max(), rtol=1e-6)


def test_okada_horizontal_opening_matches_cutde_and_is_continuous_in_dip():
    rng = np.random.default_rng(8)
    obs = rng.uniform(-15e3, 15e3, (2, 100))
    geom = dict(xcen=0.0, ycen=300.0, depth=2500.0, length=6000.0, width=3000.0, opening=1.0)
    flat = np.column_stack(okada(obs[0], obs[1], strike=75.0, dip=0.0, **geom))
    ref = _cutde(obs, _rect_triangles(0.0, 300.0, 2500.0, 75.0, 0.0, 6000.0, 3000.0), np.eye(3)[2])
    np.testing.assert_allclose(flat, ref, atol=1e-7 * np.abs(ref).max(), rtol=1e-6)
    for kw in ({"slip": 1.0, "rake": 0.0}, {"slip": 1.0, "rake": 90.0}):
        g = {**geom, "opening": 0.0, **kw}
        a = np.array(okada(obs[0], obs[1], strike=75.0, dip=0.0, **g))
        b = np.array(okada(obs[0], obs[1], strike=75.0, dip=1e-4, **g))
        np.testing.assert_allclose(a, b, atol=1e-5 * np.abs(a).max())


def test_okada_rake_combines_components_linearly():
    x, y = np.meshgrid(np.linspace(-1e4, 1e4, 9), np.linspace(-1e4, 1e4, 7))
    geom = dict(xcen=0, ycen=0, depth=3000, strike=45, dip=50, length=5000, width=3000)
    a = np.array(okada(x, y, **geom, slip=2.0, rake=30.0))
    ss = np.array(okada(x, y, **geom, slip=1.0, rake=0.0))
    ds = np.array(okada(x, y, **geom, slip=1.0, rake=90.0))
    np.testing.assert_allclose(a, 2 * np.cos(np.deg2rad(30)) * ss + 2 * np.sin(np.deg2rad(30)) * ds, atol=1e-15)


def test_vertical_strike_slip_symmetry_and_thrust_uplift_side():
    x, y = np.meshgrid(np.linspace(-1e4, 1e4, 41), np.linspace(-1e4, 1e4, 41))
    # Vertical strike-slip fault along north: uz antisymmetric across the fault and along it.
    ue, un, uz = okada(x, y, xcen=0, ycen=0, depth=5000, strike=0, dip=90, length=1e4, width=6000, slip=1.0)
    np.testing.assert_allclose(uz, -uz[:, ::-1], atol=1e-12)
    np.testing.assert_allclose(uz, -uz[::-1, :], atol=1e-12)
    np.testing.assert_allclose(un, -un[:, ::-1], atol=1e-12)
    np.testing.assert_allclose(un, un[::-1, :], atol=1e-12)
    # Blind thrust dipping east (strike north, right-hand rule): peak uplift over the up-dip
    # half of the fault, whose surface projection spans x in [-W/2 cos(dip), 0].
    _, _, uz = okada(x, y, xcen=0, ycen=0, depth=4000, strike=0, dip=30, length=1e4, width=6000, slip=1.0, rake=90)
    row = uz[20]
    assert -3000 * np.cos(np.deg2rad(30)) <= x[20, np.argmax(row)] <= 0 and row.max() > 0.1


def test_okada_far_field_is_a_point_dislocation():
    # Far away only the potency (slip x area) matters, and uz decays as r^-2 (Okada 1985, eqs. 8-10).
    az = 0.5
    geom = dict(xcen=0, ycen=0, depth=5000, strike=0, dip=45, rake=90)
    r = np.array([2e5, 1e6, 2e6])
    big = okada(r * np.cos(az), r * np.sin(az), length=2000, width=2000, slip=1.0, **geom)[2]
    small = okada(r * np.cos(az), r * np.sin(az), length=1000, width=1000, slip=4.0, **geom)[2]
    np.testing.assert_allclose(big, small, rtol=2e-3)
    assert np.log2(big[1] / big[2]) == pytest.approx(2.0, abs=0.05)


def test_small_horizontal_tensile_patch_is_a_point_crack():
    x = np.linspace(-8000, 8000, 17)
    a = 50.0
    ok = okada(x, 300.0, xcen=0, ycen=0, depth=3000, strike=10, dip=0, length=a, width=a, opening=2.0)
    pc = point_crack(x, 300.0, xcen=0, ycen=0, depth=3000, dV=2.0 * a * a)
    np.testing.assert_allclose(ok, pc, rtol=2e-3, atol=1e-12)


def test_okada_rejects_bad_geometry():
    with pytest.raises(GeodiffError, match="surface"):
        okada(0, 0, xcen=0, ycen=0, depth=100, strike=0, dip=90, length=10, width=1000, slip=1)
    with pytest.raises(GeodiffError, match="dip"):
        okada(0, 0, xcen=0, ycen=0, depth=1000, strike=0, dip=120, length=10, width=10, slip=1)


# ---------------------------------------------------------------- sills


def _sneddon_disc_triangles(radius, depth, dV, nr=16, ns=48):
    """Triangulated disc with Sneddon's opening at each triangle centroid, normalised to dV."""
    tris, w, area = [], [], []
    for i in range(nr):
        r0, r1 = radius * i / nr, radius * (i + 1) / nr
        for j in range(ns):
            t0, t1 = 2 * np.pi * j / ns, 2 * np.pi * (j + 1) / ns
            q = [np.array([r * np.cos(t), r * np.sin(t), -depth]) for r, t in ((r0, t0), (r1, t0), (r1, t1), (r0, t1))]
            for tri in ([q[0], q[1], q[2]], [q[0], q[2], q[3]]) if i else ([q[1], q[2], q[0]],):
                tri = np.array(tri)
                c = tri.mean(axis=0)
                tris.append(tri)
                w.append(np.sqrt(max(1 - (np.hypot(c[0], c[1]) / radius) ** 2, 0.0)))
                area.append(0.5 * np.linalg.norm(np.cross(tri[1] - tri[0], tri[2] - tri[0])))
    w = np.array(w)
    w *= dV / (w * np.array(area)).sum()
    return np.array(tris), w


@pytest.mark.parametrize(("radius", "depth"), [(2000.0, 2000.0), (3000.0, 1500.0)])
def test_penny_crack_matches_cutde_sneddon_disc(radius, depth):
    tris, w = _sneddon_disc_triangles(radius, depth, 1e6)
    x = np.linspace(0, 12000, 31)
    obs = np.array([x * np.cos(0.3), x * np.sin(0.3)])
    mat = cutde_hs.disp_matrix(np.column_stack([obs[0], obs[1], 0 * x]), tris, 0.25)
    ref = np.einsum("oitj,tj->oi", mat, np.column_stack([0 * w, 0 * w, w]))
    mine = np.column_stack(penny_crack(obs[0], obs[1], xcen=0, ycen=0, depth=depth, radius=radius, dV=1e6))
    np.testing.assert_allclose(mine, ref, atol=5e-3 * np.abs(ref).max())


def test_deep_penny_crack_is_a_point_crack_and_point_crack_closed_form():
    x = np.linspace(-30000, 30000, 25)
    deep = penny_crack(x, 0.0, xcen=0, ycen=0, depth=20000, radius=500, dV=1e6)
    pc = point_crack(x, 0.0, xcen=0, ycen=0, depth=20000, dV=1e6)
    np.testing.assert_allclose(deep, pc, rtol=2e-3, atol=1e-12)
    # Okada (1985) tensile point source with dip 0: uz(0) = 3 dV / (2 pi d^2).
    assert point_crack(0.0, 0.0, xcen=0, ycen=0, depth=2000, dV=1e6)[2] == pytest.approx(3e6 / (2 * np.pi * 4e6))


def test_penny_crack_pressure_gives_sneddon_volume():
    kw = dict(xcen=0, ycen=0, depth=3000, radius=1500)
    p = penny_crack(np.arange(5) * 1000.0, 0.0, pressure=1e7, mu=3e10, nu=0.25, **kw)
    v = penny_crack(np.arange(5) * 1000.0, 0.0, dV=sneddon_volume(1500, 1e7, 3e10, 0.25), **kw)
    np.testing.assert_allclose(p, v)
    # Sneddon's opening in Young's-modulus form, 8 (1 - nu^2) p sqrt(a^2 - r^2) / (pi E), integrated.
    r = np.linspace(0, 1500, 200_001)
    young = 2 * 3e10 * 1.25
    w = 8 * (1 - 0.25**2) * 1e7 * np.sqrt(1500**2 - r**2) / (np.pi * young)
    assert np.trapezoid(2 * np.pi * r * w, r) == pytest.approx(sneddon_volume(1500, 1e7, 3e10, 0.25), rel=1e-6)
    with pytest.raises(GeodiffError):
        penny_crack(0.0, 0.0, dV=1.0, pressure=1.0, **kw)


def _pressurised_crack_bem(radius, depth, nu=0.25, rings=8):
    """Boundary-element pressurised horizontal crack in a half-space with cutde (test-only oracle).

    Triangles carry constant opening and shear; their centroids see a uniform normal traction
    -p and no shear traction, the problem Fialko et al. (2001) solve semi-analytically.
    """
    from cutde.geometry import strain_to_stress

    tris = []
    for i in range(rings):
        r0, r1, ns = radius * i / rings, radius * (i + 1) / rings, 6 * (i + 1)
        for j in range(ns):
            t0, t1 = 2 * np.pi * j / ns, 2 * np.pi * (j + 1) / ns
            p = {k: [r * np.cos(t), r * np.sin(t), -depth] for k, (r, t) in
                 {"a": (r0, t0), "b": (r1, t0), "c": (r1, t1), "d": (r0, t1)}.items()}
            tris += [[p["a"], p["b"], p["c"]]] + ([[p["a"], p["c"], p["d"]]] if i else [])
    tris = np.array(tris)
    centroids = tris.mean(axis=1)
    m = len(tris)
    strain = cutde_hs.strain_matrix(centroids, tris, nu)  # (obs, 6, src, 3)
    stress = strain_to_stress(strain.transpose(0, 2, 3, 1).reshape(-1, 6), 1.0, nu).reshape(m, m, 3, 6)
    traction = stress[..., [2, 4, 5]].transpose(0, 3, 1, 2).reshape(3 * m, 3 * m)  # szz, sxz, syz
    rhs = np.zeros((m, 3))
    rhs[:, 0] = -1.0
    slip = np.linalg.solve(traction, rhs.ravel()).reshape(m, 3)
    area = 0.5 * np.linalg.norm(np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0]), axis=1)
    normal_sign = np.sign(np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0])[:, 2])
    return tris, slip, float(np.sum(slip[:, 2] * area * normal_sign))


@pytest.mark.slow
def test_penny_crack_per_unit_volume_matches_a_free_surface_bem_crack():
    radius, depth = 1000.0, 1000.0
    tris, slip, volume = _pressurised_crack_bem(radius, depth)
    x = np.linspace(0, 3000, 7)
    obs = np.column_stack([x, 0 * x, 0 * x])
    ref = np.einsum("oitj,tj->oi", cutde_hs.disp_matrix(obs, tris, 0.25), slip) / volume
    mine = np.column_stack(penny_crack(x, 0 * x, xcen=0, ycen=0, depth=depth, radius=radius, dV=1.0))
    np.testing.assert_allclose(mine[:, [0, 2]], ref[:, [0, 2]], atol=0.06 * np.abs(ref[:, 2]).max())
