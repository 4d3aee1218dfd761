"""Problem 3: a VAE whose signal s is a word string and whose latent z is continuous.

The encoder maps a message s to a Gaussian N(zhat_s, sigma2_s) and z is drawn from it.

`vae-reparam` derives the reparameterisation z = zhat + sqrt(sigma2) eps by a change of
variables; `vae-gradient` differentiates it and follows a distortion -ln P(s|z) through it;
`vae-rate` shows that the rate with the optimal (marginal) prior is the mutual information
I(s;z) = h(z) - h(z|s) and computes it for a mixture of Gaussian encoders; `vae-kl` derives
KL(N(mu, sigma2) || N(0, 1)), the rate against a standard normal prior.

Symbolic work is done once per process (functools.lru_cache) on general symbols; each
derivation substitutes its numbers and runs light independent checks: quadrature with
mpmath (its double-precision context `mpmath.fp` where 1e-9 leaves ample room), central
finite differences at 40 digits, quantile transforms, and seeded sampling with a stated
tolerance (five standard errors, or an empirical Bernstein bound where rare events matter).
Each distinct parameter set is derived once per process and handed out as fresh copies.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import random
import statistics
from dataclasses import dataclass
from typing import Any, Callable

import mpmath
import sympy as sp
from mpmath import fp

from .core import (FAMILIES, Check, Derivation, Family, Figure, Notation, Param, Remark, Step,
                   StepKind, Table, compare, numeric_value, register, register_alias,
                   rounded, to_latex)
from .values import ParameterError, check_probabilities, parse_list, parse_number

# ------------------------------------------------------------------ symbols

ZHAT = Notation("zhat", r"\hat{z}", real=True)
SIGMA2 = Notation("sigma2", r"\sigma^{2}", positive=True)
EPS = Notation("eps", r"\epsilon", real=True)
MU = Notation("mu", r"\mu", real=True)
Z = Notation("a_z", "z", real=True)  # the name orders z first in sums: z - \hat{z}, not -\hat{z} + z

# Display-only notation (names carry a prefix so no other module's Notation can collide).
P_EPS = Notation("vae: p_eps(eps)", r"p_{\epsilon}(\epsilon)")
P_Z = Notation("vae: p_z(z)", r"p_{z}(z)")
P_STATED = Notation("vae: p(z)", r"p(z)")
Z_OF = Notation("vae: z(zhat, sigma2, eps)", r"z(\hat{z}, \sigma^{2}, \epsilon)")
G_INV = sp.Function("g^{-1}")
P_EPS_F = sp.Function("p_epsilon")
INVERSE = Notation("vae: g^-1(z)", r"g^{-1}(z)")
JACOBIAN = Notation("vae: |dg^-1/dz|", r"\left|\frac{d g^{-1}(z)}{d z}\right|")
DZ_DZHAT = Notation("vae: dz/dzhat", r"\frac{\partial z}{\partial \hat{z}}")
DZ_DSIGMA2 = Notation("vae: dz/dsigma2", r"\frac{\partial z}{\partial \sigma^{2}}")
GRADIENT = Notation("vae: grad z", r"\left(\frac{\partial z}{\partial \hat{z}}, "
                    r"\frac{\partial z}{\partial \sigma^{2}}\right)")
DISTORTION = Notation("vae: D(z)", r"D(z)")
DISTORTION_PRIME = Notation("vae: D'(z)", r"D'(z)")
DISTORTION_GRADIENT = Notation("vae: grad D", r"\left(\frac{\partial D}{\partial \hat{z}}, "
                               r"\frac{\partial D}{\partial \sigma^{2}}\right)")
MIXTURE = Notation("vae: p_Pop,Psi(z)", r"p_{\mathrm{Pop},\Psi}(z)")
RATE = Notation("vae: rate", r"\mathrm{rate}")
RATE_EXPECTATION = Notation("vae: E ln p(z|s)/p(z)",
                            r"E_{s \sim \mathrm{Pop},\, z \sim p_{\Psi}(z|s)} "
                            r"\ln \frac{p_{\Psi}(z|s)}{p_{\mathrm{Pop},\Psi}(z)}")
H_Z = Notation("vae: h(z)", r"h(z)")
H_Z_GIVEN_S = Notation("vae: h(z|s)", r"h(z|s)")
H_S = Notation("vae: H(s)", r"H(s)")
MUTUAL = Notation("vae: I(s;z)", r"I(s; z)")
H_GAUSS = Notation("vae: h(N(mu, sigma2))", r"h\left(\mathcal{N}(\mu, \sigma^{2})\right)")
I_IDENTICAL = Notation("vae: I identical", r"I(s; z)\big|_{\text{identical encoders}}")
I_FAR = Notation("vae: I far apart", r"I(s; z)\big|_{\text{far-apart encoders}}")
KL = Notation("vae: KL", r"\mathrm{KL}\left(\mathcal{N}(\mu, \sigma^{2}) \,\|\, \mathcal{N}(0, 1)\right)")
LOG_RATIO = Notation("vae: ln q/p", r"\ln \frac{q(z)}{p(z)}")
Q_DENSITY = Notation("vae: q(z)", r"q(z)")
P_DENSITY = Notation("vae: p(z) prior", r"p(z)")
N_DENSITY = Notation("vae: N(z; mu, sigma2)", r"\mathcal{N}(z; \mu, \sigma^{2})")
MEAN_Q = Notation("vae: E_q z", r"E_{q}[z]")
SECOND_Q = Notation("vae: E_q z^2", r"E_{q}[z^{2}]")

# -------------------------------------------------------------- constants

SEED = 31230               # every sampling check uses this seed
SAMPLES = 20_000           # draws per sampling check
STANDARD_ERRORS = 5        # statistical tolerance of sampling checks
FD_DIGITS = 40             # working precision of the finite differences
FD_STEP = mpmath.mpf(10) ** -15
QUANTILE_DIGITS = 20       # working precision of the quantile transform (checks ask for 1e-9)
SPLITS = (-12, -8, -4, -2, 0, 2, 4, 8, 12)  # break points of the check quadratures, in standard deviations
MAIN_SPLITS = (-12, -4, 0, 4, 12)            # break points of the adaptive quadrature of h(z)
RATE_SAMPLES = 5_000       # draws of the rate's Monte Carlo check
MAX_MESSAGES = 12
LIMIT_ABS = 10 ** 6        # |zhat|, |mu| at most this
LIMIT_EPS = 100            # |eps| at most this (a standard normal draw)
VARIANCE_RANGE = (sp.Rational(1, 10 ** 6), sp.Integer(10 ** 6))
GL_ORDER_RATE = 40          # Gauss-Legendre nodes per piece of the rate's quadrature
FAR_APART = 100            # spacing of the far-apart limit, in largest standard deviations

# Stand-in values used by the numeric checks when a parameter is left symbolic.
CHECK_POINT = {"zhat": sp.Rational(1, 2), "sigma2": sp.Integer(4), "eps": sp.Rational(3, 10),
               "mu": sp.Rational(1, 2)}
SYMBOLS = {"zhat": ZHAT, "sigma2": SIGMA2, "eps": EPS, "mu": MU}

# A toy decoder for the two-word string s = (w1, w2) = (0, 2) over a three-word vocabulary:
# P(w1 = j | z) is a softmax of FIRST_SLOPE[j] z + FIRST_BIAS[j], and
# P(w2 = k | w1, z) a softmax of NEXT_SLOPE[k] z + NEXT_BIAS[w1][k].
FIRST_SLOPE = (sp.Integer(1), sp.Rational(-1, 2), sp.Integer(2))
FIRST_BIAS = (sp.Integer(0), sp.Rational(1, 3), sp.Integer(-1))
NEXT_SLOPE = (sp.Integer(-1), sp.Rational(1, 2), sp.Integer(1))
NEXT_BIAS = ((sp.Integer(0), sp.Integer(1), sp.Rational(-1, 2)),
             (sp.Rational(1, 4), sp.Integer(0), sp.Integer(0)),
             (sp.Integer(-1), sp.Rational(1, 2), sp.Integer(0)))
TOY_STRING = (0, 2)


def _mp(value) -> mpmath.mpf:
    """An exact rational as an mpmath number at the working precision."""
    value = sp.Rational(value)
    return mpmath.mpf(int(value.p)) / int(value.q)


# ------------------------------------------------------- the model, symbolically

def reparam_map(zhat, sigma2, eps):
    """z(zhat, sigma2, eps): shift by the mean and scale by the standard deviation sqrt(sigma2)."""
    return zhat + sp.sqrt(sigma2) * eps


def gaussian(x, mean, variance):
    """The normal density N(x; mean, variance)."""
    return sp.exp(-(x - mean) ** 2 / (2 * variance)) / sp.sqrt(2 * sp.pi * variance)


@dataclass(frozen=True)
class ReparamModel:
    noise: Any           # p_eps(eps)
    forward: Any         # g(eps) = z
    inverse: Any         # g^{-1}(z)
    jacobian: Any        # |d g^{-1} / dz|
    density: Any         # p_z(z) by change of variables
    kernel: Any          # exp(-(z - zhat)^2 / (2 sigma2)), the stated shape
    normaliser: Any      # its integral over the real line
    stated: Any          # kernel / normaliser
    identity: bool       # SymPy: density / stated reduces to 1
    gradient: tuple      # (dz/dzhat, dz/dsigma2)
    forward_f: Callable  # float versions for the checks
    inverse_f: Callable
    jacobian_f: Callable
    density_f: Callable
    forward_mp: Callable


@functools.lru_cache(maxsize=None)
def reparam_model() -> ReparamModel:
    """The change of variables z = g(eps), done once on general symbols."""
    noise = sp.exp(-EPS ** 2 / 2) / sp.sqrt(2 * sp.pi)
    forward = reparam_map(ZHAT, SIGMA2, EPS)
    solved, solution = sp.solve_linear(Z - forward, symbols=[EPS])  # g is linear in eps
    if solved != EPS:
        raise ArithmeticError("the reparameterisation is not invertible")
    inverse = sp.together(solution)
    jacobian = sp.Abs(sp.diff(inverse, Z))
    density = noise.subs(EPS, inverse) * jacobian
    kernel = sp.exp(-(Z - ZHAT) ** 2 / (2 * SIGMA2))
    normaliser = kernel_integral(ZHAT, SIGMA2)
    stated = kernel / normaliser
    identity = sp.powsimp(sp.expand(density / stated), force=True) == 1
    gradient = (sp.diff(forward, ZHAT), sp.diff(forward, SIGMA2))
    arguments, at_z = (ZHAT, SIGMA2, EPS), (ZHAT, SIGMA2, Z)
    return ReparamModel(
        noise, forward, inverse, jacobian, density, kernel, normaliser, stated, bool(identity), gradient,
        sp.lambdify(arguments, forward, "math"), sp.lambdify(at_z, inverse, "math"),
        sp.lambdify(at_z, jacobian, "math"), sp.lambdify(at_z, density, "math"),
        sp.lambdify(arguments, forward, "mpmath"))


T = sp.Symbol("t", real=True)


SCALE = sp.Symbol("a", positive=True)


@functools.lru_cache(maxsize=None)
def _scaled_normal_mass():
    """int exp(-a t^2 / 2) / sqrt(2 pi) dt over the real line, a > 0, by SymPy integration.

    SymPy's integrator reaches it through the error function; its Meijer G route (the default
    try for infinite limits) gives the same but costs several times more on first use.
    """
    return sp.integrate(sp.exp(-SCALE * T ** 2 / 2) / sp.sqrt(2 * sp.pi), (T, -sp.oo, sp.oo),
                        meijerg=False, risch=False, heurisch=False)


@functools.lru_cache(maxsize=None)
def standard_moment(k: int):
    """E[t^k] for t ~ N(0, 1), by SymPy integration.

    Even k: differentiate the integral of exp(-a t^2 / 2) under the integral sign,
    E[t^(2j)] = (-2 d/da)^j at a = 1. Odd k: the integral itself (an elementary antiderivative).
    Where SymPy leaves a form unevaluated, its default integration is used.
    """
    density = sp.exp(-T ** 2 / 2) / sp.sqrt(2 * sp.pi)
    if k % 2 == 0:
        mass = _scaled_normal_mass()
        value = (-2) ** (k // 2) * sp.diff(mass, SCALE, k // 2).subs(SCALE, 1)
    else:
        value = sp.integrate(T ** k * density, (T, -sp.oo, sp.oo), meijerg=False)
    if value.is_Rational:
        return value
    return sp.integrate(T ** k * density, (T, -sp.oo, sp.oo))


def kernel_integral(mean, variance):
    """int exp(-(z - mean)^2 / (2 variance)) dz over the real line, by z = mean + sqrt(variance) t."""
    return sp.sqrt(variance) * standard_moment(0) * sp.sqrt(2 * sp.pi)


def gaussian_expectation(expr, mean, variance):
    """E[expr] for z ~ N(mean, variance), expr a polynomial in z.

    Change variables to z = mean + sqrt(variance) t: the Jacobian sqrt(variance) cancels the
    density's normaliser, leaving a polynomial in t integrated term by term against N(0, 1).
    """
    shifted = sp.expand(sp.sympify(expr).subs(Z, mean + sp.sqrt(variance) * T))  # our own model expressions
    polynomial = sp.Poly(shifted, T)
    return sp.expand(sp.Add(*[coefficient * standard_moment(k) for (k,), coefficient in polynomial.terms()]))


@functools.lru_cache(maxsize=None)
def gaussian_entropy() -> tuple:
    """h(N(mu, sigma2)) = E[-ln N(z)] by SymPy, as (integral shown, closed form)."""
    density = gaussian(Z, MU, SIGMA2)
    shown = -sp.Integral(N_DENSITY * sp.log(N_DENSITY), (Z, -sp.oo, sp.oo))
    negative_log = sp.expand(sp.expand_log(-sp.log(density), force=True))
    value = gaussian_expectation(negative_log, MU, SIGMA2)
    closed = sp.log(2 * sp.pi * sp.E * SIGMA2) / 2
    if sp.expand(sp.expand_log(value - closed, force=True)) != 0:
        raise ArithmeticError("Gaussian entropy does not reduce to the closed form")
    return shown, closed


@functools.lru_cache(maxsize=None)
def _gaussian_entropy_lambda() -> Callable:
    return sp.lambdify(SIGMA2, gaussian_entropy()[1], "math")


def gaussian_entropy_float(variance: float) -> float:
    """The derived closed form h(N(mu, sigma2)), evaluated in floats."""
    return _gaussian_entropy_lambda()(variance)


@functools.lru_cache(maxsize=None)
def rate_identity(messages: int) -> bool:
    """SymPy: the rate's integrand equals that of h(z) - h(z|s), pointwise, for this many messages.

    With abstract encoder densities q_s and p = sum_s w_s q_s,
    sum_s w_s q_s ln(q_s / p)  ==  -p ln p + sum_s w_s q_s ln q_s.
    """
    weights = sp.symbols(f"w0:{messages}", positive=True)
    densities = [sp.Function(f"q{s}", positive=True)(Z) for s in range(messages)]
    marginal = sp.Function("p", positive=True)(Z)
    rate = sum(w * q * sp.log(q / marginal) for w, q in zip(weights, densities))
    entropies = -marginal * sp.log(marginal) + sum(w * q * sp.log(q) for w, q in zip(weights, densities))
    mixture = sum(w * q for w, q in zip(weights, densities))
    difference = sp.expand(sp.expand_log(rate - entropies, force=True)).subs(marginal, mixture)
    return sp.expand(difference) == 0


@dataclass(frozen=True)
class KLModel:
    definition: Any
    log_ratio: Any
    moments: tuple
    closed: Any
    matches: bool  # the integrated form equals (mu^2 + sigma2 - 1 - ln sigma2) / 2
    log_ratio_f: Callable


@functools.lru_cache(maxsize=None)
def kl_model() -> KLModel:
    """KL(N(mu, sigma2) || N(0, 1)) by SymPy: expand ln q/p in z, integrate its moments."""
    q = gaussian(Z, MU, SIGMA2)
    p = gaussian(Z, 0, 1)
    definition = sp.Integral(Q_DENSITY * sp.log(sp.Mul(Q_DENSITY, sp.Pow(P_DENSITY, -1), evaluate=False)),
                             (Z, -sp.oo, sp.oo))
    log_ratio = sp.expand(sp.expand_log(sp.log(q) - sp.log(p), force=True))
    polynomial = sp.Poly(log_ratio, Z)
    if polynomial.degree() > 2:
        raise ArithmeticError("ln q/p should be quadratic in z")
    moments = tuple(gaussian_expectation(Z ** k, MU, SIGMA2) for k in (0, 1, 2))
    closed = sp.expand(sum(polynomial.coeff_monomial(Z ** k) * moments[k] for k in (0, 1, 2)))
    matches = sp.expand(sp.expand_log(closed - kl_closed_form(), force=True)) == 0
    return KLModel(definition, log_ratio, moments, closed, bool(matches),
                   sp.lambdify((MU, SIGMA2, Z), log_ratio, "math"))


def kl_closed_form():
    """The displayed closed form (mu^2 + sigma2 - 1 - ln sigma2) / 2, checked against kl_model()."""
    return (MU ** 2 + SIGMA2 - 1 - sp.log(SIGMA2)) / 2


@dataclass(frozen=True)
class ToyDecoder:
    distortion: Any     # D(z) = -ln P(s | z), s = TOY_STRING
    derivative: Any     # D'(z)
    distortion_mp: Callable
    derivative_mp: Callable


@functools.lru_cache(maxsize=None)
def toy_decoder() -> ToyDecoder:
    first = [a * Z + b for a, b in zip(FIRST_SLOPE, FIRST_BIAS)]
    w1, w2 = TOY_STRING
    following = [c * Z + d for c, d in zip(NEXT_SLOPE, NEXT_BIAS[w1])]
    distortion = (-first[w1] + sp.log(sum(sp.exp(x) for x in first))
                  - following[w2] + sp.log(sum(sp.exp(x) for x in following)))
    derivative = sp.diff(distortion, Z)
    return ToyDecoder(distortion, derivative, sp.lambdify(Z, distortion, "mpmath"),
                      sp.lambdify(Z, derivative, "mpmath"))


def toy_distortion_mp(z) -> mpmath.mpf:
    """-ln P(s | z) of the toy decoder, written directly with mpmath (an independent path)."""
    w1, w2 = TOY_STRING

    def neg_log_softmax(logits, index):
        top = max(logits)
        return -(logits[index] - top) + mpmath.log(mpmath.fsum(mpmath.exp(x - top) for x in logits))

    first_slope, first_bias, next_slope, next_bias = _toy_constants(mpmath.mp.prec)
    first = [a * z + b for a, b in zip(first_slope, first_bias)]
    following = [c * z + d for c, d in zip(next_slope, next_bias)]
    return neg_log_softmax(first, w1) + neg_log_softmax(following, w2)


@functools.lru_cache(maxsize=None)
def _toy_constants(prec: int) -> tuple:
    """The toy decoder's slopes and biases as mpmath numbers at `prec` bits (the same numbers _mp gives)."""
    with mpmath.workprec(prec):
        return tuple(tuple(_mp(x) for x in row)
                     for row in (FIRST_SLOPE, FIRST_BIAS, NEXT_SLOPE, NEXT_BIAS[TOY_STRING[0]]))


# ------------------------------------------------------ independent numeric paths

@functools.lru_cache(maxsize=None)
def quantile_transform(zhat, sigma2, eps) -> mpmath.mpf:
    """The increasing map carrying N(0,1) onto the stated law: F^{-1}(Phi(eps)), 20 digits.

    F is the CDF of exp(-(z - zhat)^2 / (2 sigma2)) written with erfc; the root is found on
    the log of the tail that contains eps, so far tails stay accurate. The secant method starts
    from the standard library's double-precision normal quantile where Phi(eps) is a float
    strictly between 0 and 1 (any start converges to the one root; a close one takes fewer steps).
    """
    with mpmath.workdps(QUANTILE_DIGITS):
        zh, v, e = _mp(zhat), _mp(sigma2), _mp(eps)
        scale, root2 = mpmath.sqrt(2 * v), mpmath.sqrt(2)
        if e <= 0:
            target = mpmath.log(mpmath.erfc(-e / root2))
            equation = lambda t: mpmath.log(mpmath.erfc((zh - t) / scale)) - target  # noqa: E731
            start = (zh, zh - 1)
        else:
            target = mpmath.log(mpmath.erfc(e / root2))
            equation = lambda t: target - mpmath.log(mpmath.erfc((t - zh) / scale))  # noqa: E731
            start = (zh, zh + 1)
        level = statistics.NormalDist().cdf(float(eps))
        if 0 < level < 1:
            sd = math.sqrt(float(sigma2))
            guess = statistics.NormalDist(float(zhat), sd).inv_cdf(level)
            start = (mpmath.mpf(guess), mpmath.mpf(guess) + 1e-9 * (sd + abs(guess)))
        return mpmath.findroot(equation, start)


def density_from_cdf(forward_mp: Callable, zhat, sigma2, t: float) -> mpmath.mpf:
    """The density of z = g(eps) at t as a centred difference of P(g(eps) <= t), 30 digits.

    The inverse of g is found by root finding on g itself, so neither the SymPy inverse nor
    its Jacobian is used.
    """
    with mpmath.workdps(30):
        zh, v = _mp(zhat), _mp(sigma2)
        h = mpmath.sqrt(v) * mpmath.mpf(10) ** -8  # a step on the scale of the density

        def cdf(x):
            def equation(e):
                return forward_mp(zh, v, e) - x
            return mpmath.ncdf(mpmath.findroot(equation, (mpmath.mpf(0), mpmath.mpf(1))))
        return (cdf(mpmath.mpf(t) + h) - cdf(mpmath.mpf(t) - h)) / (2 * h)


def central_difference(function: Callable, point: list, index: int) -> mpmath.mpf:
    """d function / d point[index] by a centred difference at FD_DIGITS digits."""
    with mpmath.workdps(FD_DIGITS):
        up = [_mp(x) for x in point]
        down = list(up)
        up[index] += FD_STEP
        down[index] -= FD_STEP
        return (function(*up) - function(*down)) / (2 * FD_STEP)


@dataclass(frozen=True)
class Mixture:
    """Encoder Gaussians with positive weight: floats for the numeric paths, and the exact
    rationals, from which every difference between two encoders is taken before rounding."""

    weights: tuple
    means: tuple
    variances: tuple
    exact: tuple = ()  # (weight, mean, variance) as SymPy Rationals, one triple per component

    @classmethod
    def of(cls, weights, means, variances) -> "Mixture":
        kept = [(sp.Rational(w), sp.Rational(m), sp.Rational(v)) for w, m, v in zip(weights, means, variances)
                if w > 0]
        floats = [(float(w), float(m), float(v)) for w, m, v in kept]
        return cls(*map(tuple, zip(*floats)), exact=tuple(kept))

    @property
    def scales(self) -> tuple:
        return tuple(math.sqrt(v) for v in self.variances)

    def density(self, z: float) -> float:
        return sum(w * math.exp(-(z - m) ** 2 / twice) / root for w, m, twice, root in self._density_terms)

    @functools.cached_property
    def _density_terms(self) -> tuple:
        return tuple((w, m, 2 * v, math.sqrt(2 * math.pi * v))
                     for w, m, v in zip(self.weights, self.means, self.variances))

    def breakpoints(self, splits=SPLITS) -> list:
        return sorted({m + k * s for m, s in zip(self.means, self.scales) for k in splits})

    @functools.cached_property
    def separable(self) -> bool:
        """Every active encoder the same Gaussian, or only one: then I(s;z) = 0 exactly."""
        return len({(m, v) for _, m, v in self.exact}) == 1


@dataclass(frozen=True)
class Offsets:
    """For a message s and z = zhat_s + sigma_s t, the log ratios
    d_r(t) = ln N(z; zhat_r, sigma2_r) - ln N(z; zhat_s, sigma2_s) = a_r t^2 + b_r t + c_r,
    and the weighted sum of the d_r with its coefficients summed exactly (in rationals) first,
    so that nearly identical encoders do not cancel in floats."""

    log_weights: tuple  # ln Pop(r)
    a: tuple
    b: tuple
    c: tuple
    sum_a: float        # sum_r Pop(r) a_r, and so on, each rounded once
    sum_b: float
    sum_c: float
    centres: tuple      # t at the mean of each encoder r, and its standard deviation in t
    widths: tuple


def _log1p_minus_x(x):
    """log1p(x) - x on an array, by its series where |x| < 1e-2 (no cancellation)."""
    np = _numpy()
    x = np.asarray(x, dtype=float)
    small = np.abs(x) < 1e-2
    xs = np.where(small, x, 0.0)
    series = np.zeros_like(xs)
    power = xs * xs
    for k in range(2, 14):
        series += (-1) ** (k + 1) * power / k
        power = power * xs
    with np.errstate(invalid="ignore", divide="ignore"):
        direct = np.log1p(np.where(small, 0.0, x)) - np.where(small, 0.0, x)
    return np.where(small, series, direct)


def _expm1_minus_x(x):
    """expm1(x) - x on an array, by its series where |x| < 1e-2."""
    np = _numpy()
    x = np.asarray(x, dtype=float)
    small = np.abs(x) < 1e-2
    xs = np.where(small, x, 0.0)
    series, term = np.zeros_like(xs), xs
    for k in range(2, 12):
        term = term * xs / k
        series += term
    with np.errstate(over="ignore"):
        direct = np.expm1(np.where(small, 0.0, x)) - np.where(small, 0.0, x)
    return np.where(small, series, direct)


def offsets(mixture: Mixture, s: int) -> Offsets:
    w_s, m_s, v_s = mixture.exact[s]
    sigma_s = math.sqrt(float(v_s))
    log_weights, a, b, c, centres, widths = [], [], [], [], [], []
    sum_a, sum_b, sum_c, second_order = sp.Integer(0), sp.Integer(0), sp.Integer(0), 0.0
    for w, m, v in mixture.exact:
        delta = m_s - m                 # exact
        x = (v - v_s) / v_s             # exact: ln(v_r / v_s) = log1p(x)
        a_r = (v - v_s) / (2 * v)
        b_r = -delta / v                # times sigma_s
        c_r = -delta ** 2 / (2 * v) - x / 2
        correction = -0.5 * float(_log1p_minus_x([float(x)])[0])  # the second-order part of -ln(v_r/v_s)/2
        log_weights.append(math.log(float(w)))
        a.append(float(a_r))
        b.append(float(b_r) * sigma_s)
        c.append(float(c_r) + correction)
        sum_a += w * a_r
        sum_b += w * b_r
        sum_c += w * c_r
        second_order += float(w) * correction
        centres.append(float(-delta / sp.sqrt(v_s)) if delta else 0.0)
        widths.append(math.sqrt(float(v / v_s)))
    return Offsets(tuple(log_weights), tuple(a), tuple(b), tuple(c), float(sum_a), float(sum_b) * sigma_s,
                   float(sum_c) + second_order, tuple(centres), tuple(widths))


def _log_ratio_terms(off: Offsets, t):
    """ln Pop(r) + d_r(t) on an array of t (last axis: r), and d_r(t) alone."""
    np = _numpy()
    t = np.asarray(t, dtype=float)[..., None]
    d = (np.array(off.a) * t + np.array(off.b)) * t + np.array(off.c)
    return np.array(off.log_weights) + d, d


def _logsumexp(values):
    np = _numpy()
    top = values.max(axis=-1)
    return top + np.log(np.exp(values - top[..., None]).sum(axis=-1))


def rate_breaks(off: Offsets, splits=SPLITS) -> list:
    """Break points in t: SPLITS standard deviations around every encoder, each in s's own scale."""
    return sorted({centre + k * width for centre, width in zip(off.centres, off.widths) for k in splits})


WINDOW = 12  # each message's quadrature window, in its standard deviations (the tail beyond: < 2e-33)


def _normal_tail(x: float) -> float:
    """P(|T| ... ) helper: the upper tail 1 - Phi(x) of the standard normal, accurate far out."""
    return 0.5 * math.erfc(x / math.sqrt(2))


def _window_tails(mixture: Mixture, s: int) -> float:
    """sum_r Pop(r) (mass of encoder r outside s's window) - (mass of s outside it): minus the
    integral of phi u over the window, since the integral of phi u over the whole line is 0."""
    w_s, m_s, v_s = mixture.exact[s]
    sigma_s = math.sqrt(float(v_s))
    total = 0.0
    for w, m, v in mixture.exact:
        delta, sigma = float(m_s - m), math.sqrt(float(v))
        total += float(w) * (_normal_tail((delta + WINDOW * sigma_s) / sigma)
                             + _normal_tail((WINDOW * sigma_s - delta) / sigma))
    return total - 2 * _normal_tail(WINDOW)


@functools.lru_cache(maxsize=None)
def window_nodes(mixture: Mixture, s: int, order: int = GL_ORDER_RATE) -> tuple:
    """Quadrature nodes over message s's window, |t| <= WINDOW: for every node, tau_r = (z - zhat_r) /
    sigma_r for every encoder r, and its weight in dt. Each piece between break points is laid out
    in the standardised variable of the narrowest encoder that covers it (its anchor), and every
    tau_r is taken from the exact difference of the means, so a spike of width 1e-3 inside a bump of
    width 1e3, or a mean of 1e6, keeps its digits."""
    np = _numpy()
    off = offsets(mixture, s)
    exact = mixture.exact
    m_s = exact[s][1]
    sigmas = [math.sqrt(float(v)) for _, _, v in exact]
    edges = _window_breaks(off)
    nodes, gl_weights = _legendre(order)
    all_taus, all_weights = [], []
    for low, high in zip(edges[:-1], edges[1:]):
        middle = (low + high) / 2
        anchor = min((r for r in range(len(exact))
                      if abs(off.centres[r] - middle) <= WINDOW * off.widths[r]), key=lambda r: sigmas[r])
        m_a = exact[anchor][1]
        ratio_as = sigmas[anchor] / sigmas[s]            # dt / d tau_a
        start = float(m_s - m_a) / sigmas[anchor]        # tau_a at t = 0
        tau_low, tau_high = start + low / ratio_as, start + high / ratio_as
        half = (tau_high - tau_low) / 2
        tau = (tau_low + tau_high) / 2 + half * nodes
        alphas = np.array([float(m_a - m) / sg for (_, m, _), sg in zip(exact, sigmas)])
        betas = np.array([sigmas[anchor] / sg for sg in sigmas])
        all_taus.append(alphas[None, :] + betas[None, :] * tau[:, None])
        all_weights.append(gl_weights * half * ratio_as)
    return np.concatenate(all_taus), np.concatenate(all_weights)


def _node_logs(mixture: Mixture, s: int, taus):
    """At each node: d_r = ln N(z; r) - ln N(z; s), ln(p(z) / N(z; s)) and t = tau_s."""
    np = _numpy()
    half_log_v = np.array([0.5 * math.log(float(v)) for _, _, v in mixture.exact])
    log_weights = np.array([math.log(w) for w in mixture.weights])
    log_densities = -taus * taus / 2 - half_log_v
    d = log_densities - log_densities[:, s:s + 1]
    return d, _logsumexp(log_weights + d), taus[:, s]


def _message_rate(mixture: Mixture, s: int, order: int) -> float:
    """KL(p(z|s) || p(z)) = int phi(t) (u - ln(1 + u)) dt over s's window + the window tails, with
    1 + u = p(z) / N(z; zhat_s, sigma2_s) at z = zhat_s + sigma_s t (the integral of phi u over the
    line is 0). Where u is small it is summed as (the exactly summed quadratic sum_r Pop(r) d_r(t))
    + sum_r Pop(r) (expm1(d_r) - d_r), and u - ln(1 + u) by its series: nearly identical encoders
    do not cancel."""
    np = _numpy()
    off = offsets(mixture, s)
    taus, weights = window_nodes(mixture, s, order)
    d, log_ratio, t = _node_logs(mixture, s, taus)
    log_phi = -t * t / 2 - 0.5 * math.log(2 * math.pi)
    phi = np.exp(log_phi)
    with np.errstate(over="ignore", invalid="ignore"):
        large = np.exp(log_phi + np.minimum(log_ratio, 700)) - phi * (1 + log_ratio)
        moderate = phi * (np.expm1(np.minimum(log_ratio, 30)) - log_ratio)
        u = ((off.sum_a * t + off.sum_b) * t + off.sum_c
             + (np.array(mixture.weights)[None, :] * _expm1_minus_x(np.minimum(d, 700))).sum(axis=1))
        small = phi * -_log1p_minus_x(np.where(np.abs(u) < 0.5, u, 0.0))
    value = np.where(np.abs(log_ratio) < 1e-3, small, np.where(log_ratio > 30, large, moderate))
    value = np.maximum(value, 0.0)  # phi (x - ln(1 + x)) >= 0 for every x > -1: below 0 is rounding
    return float((value * weights).sum()) + _window_tails(mixture, s)


def mutual_information(mixture: Mixture, order: int = GL_ORDER_RATE) -> float:
    """I(s;z) = sum_s Pop(s) KL(p(z|s) || p(z)), each term by _message_rate. I >= 0 (Gibbs): the
    integrands are >= 0 and the tail terms are >= -2e-33, so a result below 0 is that rounding and
    is reported as 0."""
    if mixture.separable:
        return 0.0
    total = sum(w * _message_rate(mixture, s, order) for s, w in enumerate(mixture.weights))
    return max(total, 0.0)


GL_ORDER = 40  # Gauss-Legendre nodes per sub-interval of the vectorised check quadrature


@functools.lru_cache(maxsize=None)
def _legendre(order: int = GL_ORDER):
    return _numpy().polynomial.legendre.leggauss(order)


def legendre_quad(function: Callable, breakpoints, order: int = GL_ORDER) -> float:
    """Composite Gauss-Legendre quadrature over consecutive break points, vectorised with numpy.

    A second, non-adaptive quadrature rule: `function` receives an array of nodes.
    """
    np = _numpy()
    nodes, weights = _legendre(order)
    edges = np.asarray(sorted(set(breakpoints)), dtype=float)
    half, middle = (edges[1:] - edges[:-1]) / 2, (edges[1:] + edges[:-1]) / 2
    points = middle[:, None] + half[:, None] * nodes[None, :]
    return float((function(points) * weights[None, :] * half[:, None]).sum())


def _standard_normal(t):
    np = _numpy()
    return np.exp(-t * t / 2) / math.sqrt(2 * math.pi)


def _window_breaks(off: Offsets) -> list:
    """SPLITS around s's own encoder, plus every other encoder's break points inside that window,
    so a narrow encoder inside a wide one is resolved."""
    limit = max(SPLITS)
    inside = [b for b in rate_breaks(off) if -limit < b < limit]
    return sorted(set(SPLITS) | set(inside))


@functools.lru_cache(maxsize=None)
def mixture_entropy_by_components(mixture: Mixture) -> float:
    """h(z) = -sum_s w_s E_{z ~ N_s}[ln p(z)], each expectation over s's own window (beyond 12
    standard deviations the weight is below 1e-32), ln p by log-sum-exp over the encoders."""
    np = _numpy()
    total = 0.0
    for s, (w, v) in enumerate(zip(mixture.weights, mixture.variances)):
        taus, weights = window_nodes(mixture, s)
        _, log_ratio, t = _node_logs(mixture, s, taus)
        log_q = -t * t / 2 - 0.5 * math.log(2 * math.pi * v)
        total -= w * float((_standard_normal(t) * (log_q + log_ratio) * weights).sum())
    return total


def rate_by_divergences(mixture: Mixture) -> float:
    """The rate from its definition, sum_s Pop(s) E_s[ln p(z|s) - ln p(z)]: -phi(t) ln(p / p(z|s))
    over s's window, with no series, no exact sums and no tail terms."""
    total = 0.0
    for s, w in enumerate(mixture.weights):
        taus, weights = window_nodes(mixture, s)
        _, log_ratio, t = _node_logs(mixture, s, taus)
        total -= w * float((_standard_normal(t) * log_ratio * weights).sum())
    return total


def component_masses(mixture: Mixture) -> float:
    """sum_s Pop(s) int N(z; zhat_s, sigma2_s) dz, each by quadrature in its standardised variable."""
    mass = legendre_quad(_standard_normal, list(SPLITS))
    return sum(w * mass for w in mixture.weights)


@functools.lru_cache(maxsize=None)
def gaussian_entropy_check_quad(variance: float) -> float:
    """-int N ln N by the vectorised Gauss-Legendre rule."""
    scale = math.sqrt(variance)
    constant = math.log(math.sqrt(2 * math.pi) * scale)

    def integrand(z):
        log_density = -z * z / (2 * variance) - constant
        return -_numpy().exp(log_density) * log_density
    return legendre_quad(integrand, [k * scale for k in SPLITS])


def sample_rate(mixture: Mixture, samples: int = SAMPLES, seed: int = SEED) -> dict:
    """Seeded Monte Carlo over s ~ Pop, z ~ N(zhat_s, sigma2_s): estimates of the rate and of h(z).

    The message counts are drawn from the multinomial, then each message's codes, which is the
    same joint distribution as drawing the pairs one at a time. The rate is estimated
    Rao-Blackwellised: for each drawn z, ln p(z|s)/p(z) is averaged over the posterior P(s|z),
    which gives KL(P(s|z) || Pop), a value in [0, ln(1/min Pop)]. Its expectation is still the
    rate, and the bounded range makes an empirical Bernstein tolerance available.
    """
    np = _numpy()
    rng = np.random.default_rng(seed)
    weights = np.array(mixture.weights) / sum(mixture.weights)
    counts = rng.multinomial(samples, weights)
    z = np.concatenate([m + math.sqrt(v) * rng.standard_normal(count)
                        for count, m, v in zip(counts, mixture.means, mixture.variances)])
    variances, means = np.array(mixture.variances), np.array(mixture.means)
    joint = np.log(weights) - 0.5 * np.log(2 * np.pi * variances) - (z[:, None] - means) ** 2 / (2 * variances)
    top = joint.max(axis=1)
    log_p = top + np.log(np.exp(joint - top[:, None]).sum(axis=1))
    log_posterior = joint - log_p[:, None]
    posterior = np.exp(log_posterior)
    divergence = (posterior * (log_posterior - np.log(weights))).sum(axis=1)
    return {"rate": float(divergence.mean()), "rate_variance": float(divergence.var(ddof=1)),
            "rate_range": float(-np.log(weights).max()),
            "entropy": float(-log_p.mean()), "entropy_se": float(log_p.std(ddof=1) / math.sqrt(samples)),
            "samples": samples}


BERNSTEIN_DELTA = 1e-6  # the empirical Bernstein check fails a correct answer with at most this probability


def bernstein(name: str, derived: float, estimate: float, variance: float, spread: float, samples: int) -> Check:
    """Agreement within the two-sided empirical Bernstein bound (Maurer and Pontil) for draws in a range
    of width `spread`: sqrt(2 V L / n) + 7 spread L / (3 (n - 1)), L = ln(4 / delta)."""
    log_term = math.log(4 / BERNSTEIN_DELTA)
    allowed = (math.sqrt(2 * variance * log_term / samples) + 7 * spread * log_term / (3 * (samples - 1))
               + 1e-9 * max(1.0, abs(derived)))
    gap = abs(derived - estimate)
    return Check(name, bool(gap <= allowed),
                 f"derived {derived:.12g}, estimate {estimate:.6g} from {samples} seeded draws (seed {SEED}); "
                 f"gap {gap:.3g} <= empirical Bernstein bound {allowed:.3g} (confidence 1 - {BERNSTEIN_DELTA:g})")


def statistical(name: str, derived: float, estimate: float, standard_error: float, samples: int) -> Check:
    """Agreement within STANDARD_ERRORS standard errors of a seeded estimate."""
    allowed = STANDARD_ERRORS * standard_error + 1e-9 * max(1.0, abs(derived))
    gap = abs(derived - estimate)
    return Check(name, bool(gap <= allowed),
                 f"derived {derived:.12g}, estimate {estimate:.6g} from {samples} seeded draws "
                 f"(seed {SEED}); gap {gap:.3g} <= {STANDARD_ERRORS} standard errors = {allowed:.3g}")


# --------------------------------------------------------------- parameters

def _parse_real(limit):
    def parse(text: str, name: str):
        value = parse_number(text, name)
        if abs(value) > limit:
            raise ParameterError(name, f"must lie between -{limit} and {limit}, got {value}")
        return value
    return parse


def _check_variance(value, name: str, where: str = ""):
    if value <= 0:
        raise ParameterError(name, f"{where}must be > 0 (a variance), got {value}")
    low, high = VARIANCE_RANGE
    if not low <= value <= high:
        raise ParameterError(name, f"{where}must lie between {low} and {high}, got {value}")


def _parse_variance(text: str, name: str):
    value = parse_number(text, name)
    _check_variance(value, name)
    return value


def _parse_weights(text: str, name: str):
    values = parse_list(text, name)
    if len(values) > MAX_MESSAGES:
        raise ParameterError(name, f"at most {MAX_MESSAGES} messages")
    check_probabilities(values, name)
    return values


def _parse_means(text: str, name: str):
    values = parse_list(text, name)
    for index, value in enumerate(values):
        if abs(value) > LIMIT_ABS:
            raise ParameterError(name, f"entry {index} must lie between -{LIMIT_ABS} and {LIMIT_ABS}, got {value}")
    return values


def _parse_variances(text: str, name: str):
    values = parse_list(text, name)
    for index, value in enumerate(values):
        _check_variance(value, name, f"entry {index} ")
    return values


ZHAT_PARAM = Param("zhat", _parse_real(LIMIT_ABS), None, "encoder mean zhat; omitted = the symbol zhat")
SIGMA2_PARAM = Param("sigma2", _parse_variance, None,
                     "encoder variance sigma2 > 0 (sigma is its square root); omitted = the symbol sigma2")
EPS_PARAM = Param("eps", _parse_real(LIMIT_EPS), None,
                  f"standard normal noise value, |eps| <= {LIMIT_EPS}; omitted = the symbol eps")

SIMPLE_MEANS = [sp.Rational(k, 2) for k in range(-4, 5)]
SIMPLE_NOISE = [sp.Rational(k, 10) for k in (-15, -10, -7, -5, -3, -2, 2, 3, 5, 7, 10, 15)]
# sigma2 = 1 is avoided where it would hide a variance-for-standard-deviation slip.
DISTINCT_VARIANCES = [sp.Rational(1, 4), sp.Integer(4), sp.Integer(9)]


def _given(params: dict, names) -> dict:
    return {SYMBOLS[name]: params[name] for name in names if params.get(name) is not None}


def _point(params: dict, names) -> dict:
    """The numbers the checks use: the requested ones, stand-ins for symbolic parameters."""
    return {name: params[name] if params.get(name) is not None else CHECK_POINT[name] for name in names}


def _where(point: dict, params: dict) -> str:
    stand_in = [name for name in point if params.get(name) is None]
    if not stand_in:
        return ""
    shown = ", ".join(f"{name}={point[name]}" for name in stand_in)
    return f" (symbolic parameters checked at {shown})"


def _given_text(params: dict, names) -> str:
    given = [_equation_latex(name, params[name]) for name in names if params.get(name) is not None]
    return ", ".join(f"${text}$" for text in given)


@functools.lru_cache(maxsize=None)
def _equation_latex(name: str, value) -> str:
    """LaTeX of `symbol = value`; the few drawn values recur across parameter sets."""
    return sp.latex(sp.Eq(SYMBOLS[name], value))


# ----------------------------------------------------------------- 3a: reparam

@functools.lru_cache(maxsize=None)
def noise_mass_check() -> Check:
    """The standard normal density integrates to 1 (it does not depend on the parameters)."""
    density = sp.lambdify(EPS, reparam_model().noise, "math")
    return compare("noise density integrates to 1 (quadrature)", fp.quad(density, list(SPLITS)), 1.0,
                   how="quadrature")


def _numbers(text: str, values) -> str:
    return f"{text} in {{{', '.join(str(v) for v in values)}}}"


@functools.lru_cache(maxsize=None)
def reparam_location_checks(zhat, sigma2, where: str) -> tuple[Check, ...]:
    """The checks of the change of variables that depend on the mean and variance only, not on eps:
    generated parameter sets share a (zhat, sigma2) pair often, so each pair is checked once."""
    model = reparam_model()
    at_point = {ZHAT: zhat, SIGMA2: sigma2}
    zh, v = float(zhat), float(sigma2)
    sd = math.sqrt(v)

    # Normalisation of the stated kernel, by quadrature.
    # In the standardised variable x = zhat + sd t: nodes placed at zhat + sd t in floats would lose
    # the digits of t to the size of zhat (|zhat| up to 1e6 against sd down to 1e-3).
    kernel_mass = sd * fp.quad(lambda t: math.exp(-t * t / 2), list(SPLITS))
    normaliser_check = compare("normalising constant vs quadrature" + where,
                               model.normaliser.xreplace(at_point), kernel_mass, how="quadrature")

    # Change of variables, each piece against a numeric path that avoids it.
    spots = [zh + k * sd for k in (-1.6, 0.3, 1.4)]
    with mpmath.workdps(30):
        zh_mp, v_mp = _mp(zhat), _mp(sigma2)

        def preimage(y):
            # one-argument closures only: findroot probes the arity of what it is given
            def equation(x):
                return model.forward_mp(zh_mp, v_mp, x) - y
            return mpmath.findroot(equation, (mpmath.mpf(0), mpmath.mpf(1)))
        inverse_numeric = [preimage(mpmath.mpf(t)) for t in spots]
        jacobian_numeric = [abs(mpmath.diff(preimage, mpmath.mpf(t))) for t in spots]
    inverse_check = compare("g^-1 vs root finding on g, 3 points" + where,
                            [model.inverse_f(zh, v, t) for t in spots], inverse_numeric, how="root finding")
    jacobian_check = compare("|dg^-1/dz| vs numeric differentiation of the root, 3 points" + where,
                             [model.jacobian_f(zh, v, t) for t in spots], jacobian_numeric,
                             how="numeric derivative")
    densities = [model.density_f(zh, v, t) for t in spots]
    transform_check = compare("p_z vs the difference quotient of P(g(eps) <= t), 3 points" + where, densities,
                              [density_from_cdf(model.forward_mp, zhat, sigma2, t) for t in spots],
                              how="finite differences of the CDF")
    stated_check = compare("p_z vs the stated kernel over its quadrature mass, 3 points" + where, densities,
                           [math.exp(-(t - zh) ** 2 / (2 * v)) / kernel_mass for t in spots], how="quadrature")
    identity_check = Check("SymPy: p_z(z) / p(z) simplifies to 1", model.identity,
                           "powsimp(expand(p_z / (kernel / normaliser))) == 1" if model.identity
                           else "the ratio does not reduce to 1")

    # Sample moments of z = g(eps) over seeded standard normal noise.
    np = _numpy()
    zs = np.asarray(_vectorised_forward()(zh, v, standard_noise()), dtype=float) + np.zeros(SAMPLES)
    mean_check = statistical("sample mean of z = g(eps) is zhat" + where, zh, float(zs.mean()),
                             math.sqrt(v / SAMPLES), SAMPLES)
    variance_check = statistical("sample variance of z = g(eps) is sigma2" + where, v, float(zs.var(ddof=1)),
                                 v * math.sqrt(2 / (SAMPLES - 1)), SAMPLES)
    return (normaliser_check, inverse_check, jacobian_check, transform_check, stated_check, identity_check,
            mean_check, variance_check)


def reparam_steps(params: dict, names=("zhat", "sigma2", "eps")) -> tuple[list[Step], Any, Any]:
    model = reparam_model()
    point = _point(params, names)
    where = _where(point, params)
    at_point = {SYMBOLS[n]: point[n] for n in names}

    # The proposed map against the quantile transform F^{-1}(Phi(eps)).
    noises = sorted({sp.Integer(-1), point["eps"], sp.Rational(5, 4)})
    with mpmath.workdps(30):
        zh_mp, v_mp = _mp(point["zhat"]), _mp(point["sigma2"])
        mapped = [model.forward_mp(zh_mp, v_mp, _mp(x)) for x in noises]
    quantiles = [quantile_transform(point["zhat"], point["sigma2"], x) for x in noises]
    quantile_check = compare(_numbers("z(eps) vs the quantile transform F^-1(Phi(eps)), eps", noises) + where,
                             mapped, quantiles, how="quantile transform")
    (normaliser_check, inverse_check, jacobian_check, transform_check, stated_check, identity_check,
     mean_check, variance_check) = reparam_location_checks(point["zhat"], point["sigma2"], where)

    steps = list(reparam_general_steps())
    steps[0] = _with_checks(steps[0], (noise_mass_check(),))
    steps[1] = _with_checks(steps[1], (normaliser_check,))
    steps[2] = _with_checks(steps[2], (quantile_check,))
    steps[3] = _with_checks(steps[3], (transform_check,))
    steps[4] = _with_checks(steps[4], (inverse_check,))
    steps[5] = _with_checks(steps[5], (jacobian_check,))
    steps[6] = _with_checks(steps[6], (identity_check, transform_check, stated_check, mean_check, variance_check))

    given = _given(params, names)
    answer = model.forward.xreplace(given)
    value_check = compare("z vs the quantile transform at the requested eps" + where,
                          model.forward.xreplace(at_point), quantiles[noises.index(point["eps"])],
                          how="quantile transform")
    shown = _substituted(model.forward, given)
    forms = (shown, answer) if given and shown != answer else (answer,)
    steps.append(Step(StepKind.RESULT, "z at the requested noise", Z_OF, forms,
                      "Put the given numbers into the map." if given else
                      "The answer, for every mean, variance and noise value.", (value_check, quantile_check),
                      approximation=rounded(answer) if not answer.free_symbols and not answer.is_Rational
                      else None))
    return steps, answer, value_check


def _with_checks(step: Step, checks: tuple) -> Step:
    return dataclasses.replace(step, checks=checks)


@functools.lru_cache(maxsize=None)
def reparam_general_steps() -> tuple[Step, ...]:
    """The parameter-free steps of the change of variables (their checks are filled in per case)."""
    model = reparam_model()
    theorem = sp.Mul(P_EPS_F(G_INV(Z)), sp.Abs(sp.Derivative(G_INV(Z), Z)), evaluate=False)
    return (
        Step(StepKind.DEFINITION, "noise density", P_EPS, (model.noise,),
             "The noise is a standard normal draw."),
        Step(StepKind.COMPUTATION, "normalising the stated density",
             sp.Integral(model.kernel, (Z, -sp.oo, sp.oo)), (model.normaliser,),
             "The stated density is only given up to a constant; SymPy integrates the Gaussian kernel "
             "to find it."),
        Step(StepKind.DEFINITION, "the reparameterisation", Z_OF, (model.forward,),
             "Scale the noise by the standard deviation $\\sigma = \\sqrt{\\sigma^{2}}$ and shift it by the "
             "mean. The map is strictly increasing because $\\sigma^{2} > 0$."),
        Step(StepKind.THEOREM, "change of variables", P_Z, (theorem,),
             "For a strictly monotone map $z = g(\\epsilon)$ the density of $z$ is the noise density at the "
             "preimage times the absolute derivative of the inverse."),
        Step(StepKind.COMPUTATION, "inverse map", INVERSE, (model.inverse,),
             "Solve $z = g(\\epsilon)$ for $\\epsilon$."),
        Step(StepKind.COMPUTATION, "Jacobian of the inverse", JACOBIAN, (model.jacobian,),
             "Differentiate the inverse; it is positive, so the absolute value changes nothing."),
        Step(StepKind.RESULT, "density of z", P_Z, (model.density, P_STATED),
             "Substituting gives exactly the stated Gaussian, normalised, so $z$ has the required "
             "distribution. A sample of noise pushed through the map has the predicted mean and variance."),
    )


def _numpy():
    """numpy, imported on first use: only the sampling checks need it."""
    import numpy
    return numpy


@functools.lru_cache(maxsize=None)
def standard_noise():
    """The seeded standard normal draws of the sampling checks, drawn once (read-only)."""
    noise = _numpy().random.default_rng(SEED).standard_normal(SAMPLES)
    noise.flags.writeable = False
    return noise


@functools.lru_cache(maxsize=None)
def _vectorised_forward() -> Callable:
    """The derived map on arrays of noise (numpy functions by name, no module-wide namespace)."""
    np = _numpy()
    return sp.lambdify((ZHAT, SIGMA2, EPS), reparam_model().forward,
                       [{"sqrt": np.sqrt, "exp": np.exp, "log": np.log}])


def _substituted(expr, given: dict):
    """expr with the given numbers put in but not yet combined (e.g. 1/2 + sqrt(4) 3/10)."""
    if not given:
        return expr
    return expr.xreplace({symbol: sp.UnevaluatedExpr(value) for symbol, value in given.items()})


# ---------------------------------------------------------------- 3b: gradient

def gradient_steps(params: dict, names=("zhat", "sigma2", "eps")):
    model = reparam_model()
    toy = toy_decoder()
    point = _point(params, names)
    where = _where(point, params)
    at_point = {SYMBOLS[n]: point[n] for n in names}
    given = _given(params, names)

    z_point = model.forward.xreplace(at_point)
    quantile = compare("z(eps) vs the quantile transform F^-1(Phi(eps))" + where, z_point,
                       quantile_transform(point["zhat"], point["sigma2"], point["eps"]),
                       how="quantile transform")
    derived = [d.xreplace(at_point) for d in model.gradient]
    with mpmath.workdps(FD_DIGITS):
        noise = _mp(point["eps"])

        def map_of(zh, v):
            return model.forward_mp(zh, v, noise)
        differences = [central_difference(map_of, [point["zhat"], point["sigma2"]], i) for i in (0, 1)]
    fd_zhat = compare("dz/dzhat vs a centred difference (40 digits)" + where, derived[0], differences[0],
                      how="finite difference")
    fd_sigma2 = compare("dz/dsigma2 vs a centred difference (40 digits)" + where, derived[1], differences[1],
                        how="finite difference")

    # The distortion -ln P(s|z) of a toy two-word decoder, followed through the map.
    with mpmath.workdps(30):
        z_mp = _mp_of(z_point)
        slope = toy.derivative_mp(z_mp)
        decoder_check = compare("toy decoder: SymPy D(z) vs a direct log-softmax (mpmath)" + where,
                                toy.distortion_mp(z_mp), toy_distortion_mp(z_mp), how="direct")
        chained = [slope * _mp_of(d) for d in derived]
    with mpmath.workdps(FD_DIGITS):
        def objective(zh, v):
            return toy_distortion_mp(model.forward_mp(zh, v, noise))
        chained_fd = [central_difference(objective, [point["zhat"], point["sigma2"]], i) for i in (0, 1)]
    chain_check = compare("chain rule through the toy decoder vs centred differences of D(z(zhat, sigma2, eps))"
                          + where, chained, chained_fd, how="finite differences")

    general = tuple(model.gradient)
    answer = [d.xreplace(given) for d in general]
    numeric = all(not a.free_symbols for a in answer)
    steps = list(gradient_general_steps())
    steps[0] = _with_checks(steps[0], (quantile,))
    steps[1] = _with_checks(steps[1], (fd_zhat,))
    steps[2] = _with_checks(steps[2], (fd_sigma2,))
    steps[3] = _with_checks(steps[3], (decoder_check,))
    steps[4] = dataclasses.replace(steps[4], checks=(chain_check,), approximation=tuple(
        rounded(sp.Float(x, 20)) for x in chained) if numeric else None)
    forms = _dedupe((general, tuple(answer)))
    steps.append(Step(StepKind.RESULT, "gradient of the sample", GRADIENT, forms,
                      "Both partial derivatives exist for every noise value, so SGD on the reparameterised "
                      "objective is well defined.", (fd_zhat, fd_sigma2),
                      approximation=tuple(rounded(a) for a in answer)
                      if numeric and not all(a.is_Rational for a in answer) else None))
    return steps, answer


@functools.lru_cache(maxsize=None)
def gradient_general_steps() -> tuple[Step, ...]:
    model = reparam_model()
    toy = toy_decoder()
    word_1, word_2 = TOY_STRING
    return (
        Step(StepKind.DEFINITION, "the reparameterised sample", Z_OF, (model.forward,),
             "From part (a): the noise is drawn first and $z$ is a smooth function of the encoder outputs."),
        Step(StepKind.COMPUTATION, "derivative in the mean", DZ_DZHAT, (model.gradient[0],),
             "$z$ moves one for one with the mean."),
        Step(StepKind.COMPUTATION, "derivative in the variance", DZ_DSIGMA2, (model.gradient[1],),
             "Differentiate $\\sqrt{\\sigma^{2}}$; the noise value is held fixed."),
        Step(StepKind.DEFINITION, "a toy distortion", DISTORTION, (toy.distortion,),
             f"To see the gradient reach the encoder, take a small decoder: word $w_1 = {word_1}$ and then "
             f"$w_2 = {word_2}$ from softmaxes whose logits are linear in $z$, so $D(z) = -\\ln P(s|z)$. "
             "The string $s$ is fixed data; only $z$ varies."),
        Step(StepKind.THEOREM, "chain rule through the sample", DISTORTION_GRADIENT,
             (tuple(sp.Mul(DISTORTION_PRIME, d) for d in model.gradient),),
             "The distortion depends on the encoder only through $z$, so its gradient is "
             "$D'(z)$ times the gradient of $z$."),
    )


def _mp_of(expr) -> mpmath.mpf:
    """An exact SymPy number at the current mpmath precision."""
    expr = sp.sympify(expr)  # parsed Rationals and our own SymPy numbers, never user text
    if expr.is_Rational:
        return _mp(expr)
    return mpmath.mpf(sp.N(expr, mpmath.mp.dps + 5))


def _dedupe(forms: tuple) -> tuple:
    kept = []
    for form in forms:
        if not kept or form != kept[-1]:
            kept.append(form)
    return tuple(kept)


# -------------------------------------------------------------------- 3c: rate

def rate_steps(params: dict):
    weights, means, variances = params["weights"], params["zhat"], params["sigma2"]
    active = [(w, m, v) for w, m, v in zip(weights, means, variances) if w > 0]
    mixture = Mixture.of(weights, means, variances)

    marginal = sp.Add(*[_weighted_gaussian(w, m, v) for w, m, v in active])
    gauss_shown, gauss_closed = gaussian_entropy()
    conditional_entropy = sp.Add(*[_weighted_entropy(w, v) for w, m, v in active])
    message_entropy, entropy_terms = _message_entropy(tuple(w for w, _, _ in active))
    h_z_given_s = sum(float(w) * gaussian_entropy_float(float(v)) for w, _, v in active)
    entropy_s = -sum(float(w) * math.log(float(w)) for w, _, _ in active)
    # I(s;z) directly (h(z) - h(z|s) would cancel for nearly identical encoders); h(z) = I + h(z|s).
    mutual = mutual_information(mixture)
    h_z = mutual + h_z_given_s

    # Independent paths.
    mass = component_masses(mixture)
    mass_check = compare("p_Pop,Psi integrates to 1 (each encoder by quadrature in its own variable)", mass, 1.0,
                         how="quadrature")
    identity = rate_identity(len(active))
    identity_check = Check(f"SymPy: rate integrand = integrand of h(z) - h(z|s), {len(active)} messages",
                           identity, "expand_log of the difference, with p = sum_s w_s q_s, is 0" if identity
                           else "the integrands differ")
    sample = sample_rate(mixture, RATE_SAMPLES)
    rate_mc = bernstein("Monte Carlo E[ln p(z|s)/p(z)], averaged over s given z", mutual, sample["rate"],
                        sample["rate_variance"], sample["rate_range"], sample["samples"])
    entropy_mc = statistical("Monte Carlo -E[ln p(z)]", h_z, sample["entropy"], sample["entropy_se"],
                             sample["samples"])
    divergences = compare("rate by quadrature of sum_s Pop(s) KL(p(z|s) || p(z))", mutual,
                          rate_by_divergences(mixture), how="quadrature")
    by_components = compare("h(z) as -sum_s Pop(s) E_s[ln p(z)], standardised quadrature", h_z,
                            mixture_entropy_by_components(mixture), how="quadrature")
    finer = 0.0 if mixture.separable else mutual_information(mixture, order=2 * GL_ORDER_RATE)
    quad_check = compare(f"I(s;z) with {2 * GL_ORDER_RATE} instead of {GL_ORDER_RATE} nodes per piece",
                         mutual, finer, how="finer quadrature")
    distinct = sorted({v for _, _, v in active})
    gauss_check = compare(f"Gaussian entropy vs quadrature, sigma2 in {{{', '.join(str(v) for v in distinct)}}}",
                          [gaussian_entropy_float(float(v)) for v in distinct],
                          [gaussian_entropy_check_quad(float(v)) for v in distinct], how="quadrature")
    weighted = sum(float(w) * gaussian_entropy_check_quad(float(v)) for w, _, v in active)
    conditional_check = compare("h(z|s) vs the weighted quadrature entropies", h_z_given_s, weighted,
                                how="quadrature")
    tolerance = 1e-9 * max(1.0, entropy_s)
    bounds = Check("0 <= I(s;z) <= H(s)", 0 <= mutual <= entropy_s + tolerance,
                   f"0 <= {mutual:.12g} <= H(s) = {entropy_s:.12g}")

    # The two limits, each computed by quadrature (the vectorised rule) as h(z) - h(z|s).
    first_mean, first_variance = active[0][1], active[0][2]
    same = Mixture.of([w for w, _, _ in active], [first_mean] * len(active), [first_variance] * len(active))
    identical = mixture_entropy_by_components(same) - gaussian_entropy_float(float(first_variance))
    identical_check = Check("identical encoders: I computed by quadrature is 0", abs(identical) <= 1e-9,
                            f"every message sent to N({float(first_mean):g}, {float(first_variance):g}): "
                            f"h(z) - h(z|s) = {identical:.3g}")
    spacing = FAR_APART * max(sp.sqrt(v) for _, _, v in active)
    spacing = sp.Rational(math.ceil(float(spacing)))
    apart = Mixture.of([w for w, _, _ in active], [k * spacing for k in range(len(active))],
                       [v for _, _, v in active])
    far = mixture_entropy_by_components(apart) - h_z_given_s
    far_check = compare(f"far-apart encoders (means {FAR_APART} standard deviations apart): I by quadrature "
                        "vs H(s)", far, entropy_s, how="closed form")

    difference, marginal_entropy = _rate_forms()
    rate_forms = (RATE_EXPECTATION, difference, MUTUAL)
    gauss_integral = gauss_shown
    steps = [
        Step(StepKind.DEFINITION, "optimal prior: the marginal of z", MIXTURE, (marginal,),
             "Draw a message from Pop and then $z$ from its encoder; the density of $z$ alone is the "
             "Pop-weighted mixture of the encoder Gaussians.", (mass_check,)),
        Step(StepKind.THEOREM, "rate as a mutual information", RATE, rate_forms,
             "Split the log ratio: the expected $-\\ln p(z)$ is the entropy $h(z)$ of the marginal and the "
             "expected $\\ln p_{\\Psi}(z|s)$ is minus the conditional entropy. Their difference is the "
             "mutual information between the message and its code.", (identity_check, divergences, rate_mc)),
        Step(StepKind.THEOREM, "Gaussian entropy", H_GAUSS, (gauss_integral, gauss_closed),
             "SymPy integrates $-\\mathcal{N} \\ln \\mathcal{N}$ over the real line; the mean drops out.",
             (gauss_check,)),
        Step(StepKind.COMPUTATION, "conditional entropy", H_Z_GIVEN_S, (conditional_entropy,),
             "Average the encoder entropies with the weights Pop(s).", (conditional_check,),
             approximation=_decimal(h_z_given_s)),
        Step(StepKind.COMPUTATION, "entropy of the marginal", H_Z,
             (marginal_entropy,),
             "A mixture of Gaussians has no closed-form entropy; it is $I(s; z) + h(z|s)$, with $I(s; z)$ "
             "computed directly below, and checked by its own quadrature over each encoder.", (by_components, entropy_mc, quad_check),
             approximation=_decimal(h_z)),
        Step(StepKind.RESULT, "the rate", MUTUAL, (difference,),
             "In nats, computed as $\\sum_s \\mathrm{Pop}(s)\\, \\mathrm{KL}(p_{\\Psi}(z|s) \\,\\|\\, p)$, "
             "each KL as $E_t[u - \\ln(1 + u)]$ with $1 + u = p(z) / p_{\\Psi}(z|s)$ (since $E_t[u] = 0$): "
             "an integrand $\\ge 0$, so the result is $\\ge 0$ up to the window tails ($< 10^{-32}$). "
             "It lies between 0 and the message entropy $H(s)$.",
             (divergences, rate_mc, bounds), approximation=_decimal(mutual)),
        Step(StepKind.THEOREM, "limit: identical encoders", I_IDENTICAL, (sp.Integer(0),),
             "If every message gets the same Gaussian, $z$ says nothing about $s$ and $h(z) = h(z|s)$.",
             (identical_check,)),
        Step(StepKind.THEOREM, "limit: far-apart encoders", I_FAR,
             _dedupe((H_S, entropy_terms, message_entropy)),
             "If the Gaussians do not overlap, $z$ identifies $s$ and the rate reaches the message entropy.",
             (far_check,), approximation=_decimal(entropy_s) if message_entropy != 0 else None),
    ]
    table = Table("Messages, their encoders and encoder entropies",
                  ("$s$", "$\\mathrm{Pop}(s)$", "$\\hat{z}_s$", "$\\sigma^{2}_s$", "$h(z|s)$"),
                  tuple((str(index), f"${_number_latex(w)}$", f"${_number_latex(m)}$", f"${_number_latex(v)}$",
                         f"${gaussian_entropy_float(float(v)):.4f}$")
                        for index, (w, m, v) in enumerate(zip(weights, means, variances))))
    checks = [divergences, rate_mc, bounds, identical_check, far_check]
    return steps, mutual, entropy_s, checks, table, mixture


@functools.lru_cache(maxsize=None)
def _weighted_gaussian(weight, mean, variance):
    """Pop(s) N(z; zhat_s, sigma2_s), one term of the marginal (terms recur across parameter sets)."""
    return weight * _gaussian_at(mean, variance)


@functools.lru_cache(maxsize=None)
def _gaussian_at(mean, variance):
    """N(z; mean, variance): the general density with the numbers put in. xreplace rebuilds the same
    expression as gaussian(Z, mean, variance) (identical srepr over ~2000 rational pairs) in a fifth
    of the time."""
    return _general_gaussian().xreplace({MU: mean, SIGMA2: variance})


@functools.lru_cache(maxsize=None)
def _general_gaussian():
    return gaussian(Z, MU, SIGMA2)


@functools.lru_cache(maxsize=None)
def _message_entropy(weights: tuple) -> tuple:
    """H(s) for the positive weights: its value and its terms -w ln w written out unevaluated."""
    value = sp.Add(*[-w * sp.log(w) for w in weights])
    terms = sp.Add(*[-sp.Mul(w, sp.log(w, evaluate=False), evaluate=False) for w in weights], evaluate=False)
    return value, terms


@functools.lru_cache(maxsize=None)
def _rate_forms() -> tuple:
    """h(z) - h(z|s), and h(z) as the integral of the marginal (the same in every case)."""
    return (sp.Add(H_Z, -H_Z_GIVEN_S, evaluate=False),
            -sp.Integral(MIXTURE * sp.log(MIXTURE), (Z, -sp.oo, sp.oo)))


@functools.lru_cache(maxsize=None)
def _number_latex(value) -> str:
    return sp.latex(value)


@functools.lru_cache(maxsize=None)
def _weighted_entropy(weight, variance):
    """Pop(s) h(N(zhat_s, sigma2_s)), one term of h(z|s)."""
    return weight * gaussian_entropy()[1].xreplace({SIGMA2: variance})


def _decimal(value: float, decimals: int = 4) -> Notation:
    text = f"{value:.{decimals}f}"
    return Notation(text, text)


# ---------------------------------------------------------------------- vae-kl

def kl_steps(params: dict, names=("mu", "sigma2")):
    model = kl_model()
    point = _point(params, names)
    where = _where(point, params)
    given = _given(params, names)
    at_point = {MU: point["mu"], SIGMA2: point["sigma2"]}
    mu, v = float(point["mu"]), float(point["sigma2"])
    sd = math.sqrt(v)
    log_q0, log_p0 = -0.5 * math.log(2 * math.pi * v), -0.5 * math.log(2 * math.pi)

    def log_q(z):
        return -(z - mu) ** 2 / (2 * v) + log_q0

    def log_p(z):
        return -z * z / 2 + log_p0
    spots = [mu + k * sd for k in (-1.5, 0.0, 0.8, 2.2)]
    ratio_check = compare("ln q/p vs the log densities evaluated directly, 4 points" + where,
                          [model.log_ratio_f(point["mu"], point["sigma2"], z) for z in spots],
                          [log_q(z) - log_p(z) for z in spots], how="direct")
    # Quadrature in the standardised variable z = mu + sd t (nodes at mu + sd t in floats would lose the
    # digits of t to the size of mu): E_q[f(z)] = int f(mu + sd t) N(t; 0, 1) dt.
    np = _numpy()
    moments_numeric = [legendre_quad(lambda t, k=k: (mu + sd * t) ** k * _standard_normal(t), list(SPLITS))
                       for k in (0, 1, 2)]
    moments_check = compare("mass and moments E_q[1], E_q[z], E_q[z^2] vs quadrature" + where,
                            [m.xreplace(at_point) for m in model.moments], moments_numeric, how="quadrature")
    closed_check = Check("SymPy: the integrated moments give (mu^2 + sigma2 - 1 - ln sigma2)/2", model.matches,
                         "expand_log of the difference is 0" if model.matches else "the forms differ")

    def integrand(t):
        # q ln(q/p) dz at z = mu + sd t: ln q = -t^2/2 + log_q0, and q dz = N(t; 0, 1) dt
        z = mu + sd * t
        return math.exp(-t * t / 2) / math.sqrt(2 * math.pi) * (-t * t / 2 + log_q0 - log_p(z))
    closed = kl_closed_form()
    at_value = closed.xreplace(at_point)
    kl_check = compare("KL vs quadrature of q ln(q/p) (mpmath)" + where, at_value,
                       fp.quad(integrand, list(SPLITS)), how="quadrature")
    standard = closed.xreplace({MU: 0, SIGMA2: 1})
    nonnegative = Check("KL >= 0, and 0 exactly at mu = 0, sigma2 = 1",
                        float(at_value) >= -1e-12 and standard == 0,
                        f"KL = {float(at_value):.12g} at the checked point; {standard} at the standard normal")

    answer = sp.expand_log(closed.xreplace(given), force=True)
    steps = list(kl_general_steps())
    steps[0] = _with_checks(steps[0], (moments_check,))
    steps[1] = _with_checks(steps[1], (kl_check,))
    steps[2] = _with_checks(steps[2], (ratio_check,))
    steps[3] = _with_checks(steps[3], (moments_check,))
    steps[4] = _with_checks(steps[4], (closed_check, kl_check))
    if given:
        forms = _dedupe((_substituted(closed, given), closed.xreplace(given), answer))
        steps.append(Step(StepKind.RESULT, "KL at the given encoder", KL, forms,
                          "Put in the given numbers.", (kl_check, nonnegative),
                          approximation=rounded(answer) if not answer.free_symbols and not answer.is_Rational
                          else None))
    else:
        steps[4] = dataclasses.replace(steps[4], kind=StepKind.RESULT)
    return steps, answer, [kl_check, nonnegative]


@functools.lru_cache(maxsize=None)
def kl_general_steps() -> tuple[Step, ...]:
    model = kl_model()
    polynomial = sp.Poly(model.log_ratio, Z)
    terms = []
    for k, moment in ((0, None), (1, MEAN_Q), (2, SECOND_Q)):
        coefficient = polynomial.coeff_monomial(Z ** k)
        if coefficient != 0:
            terms.append(coefficient if moment is None else sp.Mul(coefficient, moment, evaluate=False))
    expectation = sp.Add(*terms, evaluate=False)
    return (
        Step(StepKind.DEFINITION, "the two densities", sp.Tuple(Q_DENSITY, P_DENSITY),
             (sp.Tuple(gaussian(Z, MU, SIGMA2), gaussian(Z, 0, 1)),),
             "The encoder density $q = \\mathcal{N}(\\mu, \\sigma^{2})$ and the prior "
             "$p = \\mathcal{N}(0, 1)$."),
        Step(StepKind.DEFINITION, "KL divergence to the standard normal", KL, (model.definition,),
             "The rate of one message against a standard normal prior: the expected log ratio of the "
             "encoder density to the prior, under the encoder density."),
        Step(StepKind.SIMPLIFICATION, "log ratio", LOG_RATIO, (model.log_ratio,),
             "Both densities are Gaussian, so the log ratio is a quadratic in $z$."),
        Step(StepKind.COMPUTATION, "moments of the encoder", sp.Tuple(MEAN_Q, SECOND_Q),
             (sp.Tuple(*model.moments[1:]),),
             "SymPy integrates $z$ and $z^{2}$ against $q$ (after $z = \\mu + \\sqrt{\\sigma^{2}}\\, t$)."),
        Step(StepKind.SIMPLIFICATION, "expected log ratio", KL,
             _dedupe((expectation, model.closed, kl_closed_form())),
             "Take the expectation term by term and collect."),
    )


# ------------------------------------------------------------------- figures

PALETTE = ("blue!70!black", "red!70!black", "green!50!black", "orange!85!black", "violet!80!black",
           "cyan!60!black")
FIGURE_WIDTH, FIGURE_HEIGHT, FIGURE_POINTS = 9.0, 4.0, 81


def _nice_step(span: float, count: int = 6) -> float:
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if factor * magnitude >= raw:
            return factor * magnitude
    return 10 * magnitude


def _tick_label(value: float) -> str:
    if abs(value - round(value)) < 1e-9:
        return str(int(round(value)))
    return f"{value:g}"


def density_figure(caption: str, curves: list, low: float, high: float, markers=(), centres=()) -> Figure:
    """Curves (legend, style, function) sampled and scaled into a 9 cm by 4 cm box, legend to the right.

    Besides an even grid, 25 points fall within 4 standard deviations of every (mean, scale) in
    `centres`, so a component narrow against the plotted range is still drawn.
    """
    grid = {low + (high - low) * i / (FIGURE_POINTS - 1) for i in range(FIGURE_POINTS)}
    for mean, scale in centres:
        grid.update(mean + scale * (k / 3 - 4) for k in range(25))
    xs = sorted(x for x in grid if low <= x <= high)
    values = [[function(x) for x in xs] for _, _, function in curves]
    top = max(max(row) for row in values) * 1.1

    def at_x(x):
        return (x - low) / (high - low) * FIGURE_WIDTH

    def at_y(y):
        return y / top * FIGURE_HEIGHT
    x_cm = [round((x - low) / (high - low) * FIGURE_WIDTH, 3) for x in xs]  # at_x, rounded once for every curve

    def coords(row):
        return _simplified_polyline(_rounded_points(zip(x_cm, [round(y / top * FIGURE_HEIGHT, 3) for y in row])))
    x_step, y_step = _nice_step(high - low), _nice_step(top, 4)
    xticks = [k * x_step for k in range(math.ceil(low / x_step), math.floor(high / x_step) + 1)]
    yticks = [k * y_step for k in range(1, math.floor(top / y_step) + 1)]
    return Figure("mixture", caption, {
        "width": f"{FIGURE_WIDTH:.2f}", "height": f"{FIGURE_HEIGHT:.2f}",
        "xend": f"{FIGURE_WIDTH + 0.4:.2f}", "yend": f"{FIGURE_HEIGHT + 0.4:.2f}",
        "xlabel": "z", "ylabel": "\\text{density}",
        "xticks": [{"at": f"{at_x(t):.3f}", "label": _tick_label(t)} for t in xticks],
        "yticks": [{"at": f"{at_y(t):.3f}", "label": _tick_label(t)} for t in yticks],
        "curves": [{"style": style, "legend": legend,
                    "coords": coords(row),
                    "legend_x": f"{FIGURE_WIDTH + 0.7:.2f}", "legend_x2": f"{FIGURE_WIDTH + 1.3:.2f}",
                    "legend_y": f"{FIGURE_HEIGHT - 0.45 * index:.2f}"}
                   for index, ((legend, style, _), row) in enumerate(zip(curves, values))],
        "markers": [{"at": f"{at_x(x):.3f}", "top": f"{at_y(y):.3f}", "label": label, "style": style,
                     "anchor": anchor} for x, y, label, style, anchor in markers],
    })


# The largest distance (cm) by which a dropped point may lie off the drawn polyline: 0.02 mm,
# far below the width of a thick line (0.3 mm), so the curve looks the same with far fewer
# points (TikZ's time per figure grows with them).
FIGURE_TOLERANCE = 0.002


def _polyline(points: list[tuple[float, float]]) -> str:
    """The points in cm as TikZ coordinates, minus repeats after rounding and points within
    FIGURE_TOLERANCE of the line between the points kept around them (Ramer-Douglas-Peucker)."""
    return _simplified_polyline(_rounded_points((round(x, 3), round(y, 3)) for x, y in points))


def _rounded_points(points) -> list[tuple[float, float]]:
    """Points already rounded to 0.001 cm, minus consecutive repeats."""
    rounded: list[tuple[float, float]] = []
    for point in points:
        if not rounded or rounded[-1] != point:
            rounded.append(point)
    return rounded


def _simplified_polyline(rounded: list[tuple[float, float]]) -> str:
    """Ramer-Douglas-Peucker on rounded points, as TikZ coordinates."""
    keep = [False] * len(rounded)
    keep[0] = keep[-1] = True
    spans = [(0, len(rounded) - 1)]
    while spans:
        first, last = spans.pop()
        (x0, y0), (x1, y1) = rounded[first], rounded[last]
        dx, dy = x1 - x0, y1 - y0
        length = math.hypot(dx, dy)
        far, farthest = -1.0, first
        for index in range(first + 1, last):
            x, y = rounded[index]
            distance = (abs(dy * (x - x0) - dx * (y - y0)) / length if length
                        else math.hypot(x - x0, y - y0))
            if distance > far:
                far, farthest = distance, index
        if far > FIGURE_TOLERANCE:
            keep[farthest] = True
            spans += [(first, farthest), (farthest, last)]
    return " ".join(f"({x:.3f},{y:.3f})" for (x, y), kept in zip(rounded, keep) if kept)


def _normal_f(mean: float, variance: float, weight: float = 1.0) -> Callable[[float], float]:
    twice, root = 2 * variance, math.sqrt(2 * math.pi * variance)  # the same floats, computed once
    return lambda x: weight * math.exp(-(x - mean) ** 2 / twice) / root


def reparam_figure(zhat, sigma2, eps) -> Figure:
    zh, v, e = float(zhat), float(sigma2), float(eps)
    z = float(sp.N(reparam_map(zhat, sigma2, eps), 20))
    sd = math.sqrt(v)
    low, high = min(-3.5, zh - 3.5 * sd, e - 0.5, z - 0.5), max(3.5, zh + 3.5 * sd, e + 0.5, z + 0.5)
    noise, code = _normal_f(0.0, 1.0), _normal_f(zh, v)
    return density_figure(
        "The noise density and the density of $z = \\hat{z} + \\sqrt{\\sigma^{2}}\\,\\epsilon$; the marks "
        "show the requested noise value and the $z$ it maps to.",
        [("noise $p_{\\epsilon}$", f"thick, dashed, {PALETTE[0]}", noise),
         ("$p_{z}$", f"thick, {PALETTE[1]}", code)],
        low, high,
        markers=[(e, noise(e), f"$\\epsilon = {sp.latex(eps)}$", PALETTE[0], "above left"),
                 (z, code(z), f"$z \\approx {z:.4g}$", PALETTE[1], "above right")],
        centres=[(0.0, 1.0), (zh, sd)])


def mixture_figure(mixture: Mixture, labels: list) -> Figure:
    low = min(m - 3.5 * s for m, s in zip(mixture.means, mixture.scales))
    high = max(m + 3.5 * s for m, s in zip(mixture.means, mixture.scales))
    curves = [(f"$\\mathrm{{Pop}}({label})\\, p_{{\\Psi}}(z|{label})$",
               f"thick, dashed, {PALETTE[index % len(PALETTE)]}", _normal_f(m, v, w))
              for index, (label, w, m, v) in enumerate(zip(labels, mixture.weights, mixture.means,
                                                           mixture.variances))]
    curves.append(("$p_{\\mathrm{Pop},\\Psi}(z)$", "very thick, black", mixture.density))
    return density_figure("The optimal prior: the marginal density of $z$ (solid) is the sum of the "
                          "weighted encoder Gaussians (dashed).", curves, low, high,
                          centres=list(zip(mixture.means, mixture.scales)))


def kl_figure(mu, sigma2) -> Figure:
    m, v = float(mu), float(sigma2)
    sd = math.sqrt(v)
    low, high = min(-3.5, m - 3.5 * sd), max(3.5, m + 3.5 * sd)
    return density_figure("The encoder density $q = \\mathcal{N}(\\mu, \\sigma^{2})$ against the prior "
                          "$p = \\mathcal{N}(0, 1)$.",
                          [("$q$", f"thick, {PALETTE[1]}", _normal_f(m, v)),
                           ("$p$", f"thick, dashed, {PALETTE[0]}", _normal_f(0.0, 1.0))], low, high,
                          centres=[(m, sd), (0.0, 1.0)])


# ------------------------------------------------------------------ families

def _all_given(params: dict, names) -> bool:
    return all(params.get(name) is not None for name in names)


def _simple_scalars(rng: random.Random) -> dict[str, str]:
    return {"zhat": str(rng.choice(SIMPLE_MEANS)), "sigma2": str(rng.choice(DISTINCT_VARIANCES)),
            "eps": str(rng.choice(SIMPLE_NOISE))}


def _freeze(params: dict) -> tuple:
    return tuple((name, tuple(value) if isinstance(value, list) else value) for name, value in params.items())


@functools.lru_cache(maxsize=2048)
def _built(family_name: str, frozen: tuple) -> Derivation:
    """One derivation per distinct parameter set: the checks are deterministic (fixed seeds), so a
    repeated parameter set, common among generated variants, is derived and checked once."""
    params = {name: list(value) if isinstance(value, tuple) else value for name, value in frozen}
    return FAMILIES[family_name].build(params)


class VaeFamily(Family):
    """A family of this module: `build` derives, `derive` hands out a fresh copy of the cached result."""

    def build(self, params: dict) -> Derivation:
        raise NotImplementedError

    def derive(self, params: dict, problem: str | None = None) -> Derivation:
        built = _built(self.name, _freeze(params))
        return dataclasses.replace(built, problem=problem or self.name, params=dict(built.params),
                                   steps=list(built.steps), checks=list(built.checks),
                                   remarks=list(built.remarks), tables=list(built.tables))


@register
class ReparamFamily(VaeFamily):
    name = "vae-reparam"
    domain = "|zhat| <= 10^6, sigma2 in [10^-6, 10^6], |eps| <= 100 (each may be symbolic); read exactly"
    summary = "reparameterised Gaussian sample z = zhat + sqrt(sigma2) eps, derived by change of variables"
    params = (ZHAT_PARAM, SIGMA2_PARAM, EPS_PARAM)
    names = ("zhat", "sigma2", "eps")

    def question(self, params: dict) -> str:
        kernel = _kernel_latex()
        given = _given_text(params, self.names)
        tail = f", and evaluate it at {given}." if given else "."
        return ("A Gaussian encoder outputs a mean $\\hat{z}$ and a variance $\\sigma^{2}$. Give a deterministic "
                "function $z(\\hat{z}, \\sigma^{2}, \\epsilon)$ of a noise value $\\epsilon$ drawn from "
                "$\\mathcal{N}(0, 1)$ such that, over the draw of the noise, $z$ has a density proportional "
                f"to ${kernel}${tail}")

    def generate(self, rng: random.Random) -> dict[str, str]:
        return _simple_scalars(rng)

    def build(self, params: dict, problem: str | None = None) -> Derivation:
        steps, answer, value_check = reparam_steps(params, self.names)
        numeric = _all_given(params, self.names)
        figure = reparam_figure(params["zhat"], params["sigma2"], params["eps"]) if numeric else None
        return Derivation(problem or self.name, self.name, self.params_json(params), self.question(params),
                          steps, answer, numeric_value(answer), [value_check], reparam_remarks(params),
                          [], figure, REPARAM_ANSWER)


@register
class GradientFamily(VaeFamily):
    name = "vae-gradient"
    domain = "|zhat| <= 10^6, sigma2 in [10^-6, 10^6], |eps| <= 100 (each may be symbolic); read exactly"
    summary = "gradient [dz/dzhat, dz/dsigma2] of the reparameterised sample, and why a discrete s is harmless"
    params = (ZHAT_PARAM, SIGMA2_PARAM, EPS_PARAM)
    names = ("zhat", "sigma2", "eps")
    numeric = False  # the answer is a pair, not one number

    def question(self, params: dict) -> str:
        given = _given_text(params, self.names)
        where = f" at {given}" if given else ""
        return ("With $z = z(\\hat{z}, \\sigma^{2}, \\epsilon)$ from the reparameterisation, the VAE objective "
                "becomes an expectation over $s \\sim \\mathrm{Pop}$ and $\\epsilon \\sim \\mathcal{N}(0, I)$, "
                "with the encoder outputs inside $z$. Find the gradient "
                "$\\left(\\partial z / \\partial \\hat{z}, \\partial z / \\partial \\sigma^{2}\\right)$"
                f"{where}, and explain whether SGD on this objective is held up by $z$ being continuous "
                "while the word string $s$ is discrete.")

    def generate(self, rng: random.Random) -> dict[str, str]:
        return _simple_scalars(rng)

    def build(self, params: dict, problem: str | None = None) -> Derivation:
        steps, answer = gradient_steps(params, self.names)
        return Derivation(problem or self.name, self.name, self.params_json(params), self.question(params),
                          steps, answer, numeric_value(answer), list(steps[-1].checks) + list(steps[-2].checks),
                          gradient_remarks(), [], None, GRADIENT_ANSWER)


def _rate_labels(count: int) -> list[str]:
    return [str(index) for index in range(count)]


@register
class RateFamily(VaeFamily):
    name = "vae-rate"
    domain = "1 to 12 messages; weights >= 0 summing to 1; |zhat| <= 10^6; sigma2 in [10^-6, 10^6]"
    summary = "rate with the optimal prior = I(s;z) = h(z) - h(z|s) for Gaussian encoders of a few messages"
    params = (
        Param("weights", _parse_weights, "1/2,1/2", "Pop(s), one probability per message, summing to 1"),
        Param("zhat", _parse_means, "-1,1", "encoder mean of each message"),
        Param("sigma2", _parse_variances, "1,1", "encoder variance of each message, each > 0"),
    )

    def validate(self, params: dict) -> None:
        count = len(params["weights"])
        for name, what in (("zhat", "mean"), ("sigma2", "variance")):
            if len(params[name]) != count:
                raise ParameterError(name, f"has {len(params[name])} entries but weights has {count}; "
                                     f"give one {what} per message")

    def question(self, params: dict) -> str:
        count = len(params["weights"])
        return (f"Messages $s \\in \\{{{', '.join(_rate_labels(count))}\\}}$ occur with probabilities "
                f"$\\mathrm{{Pop}} = {to_latex(tuple(params['weights']))}$, and the encoder sends message $s$ to "
                f"$\\mathcal{{N}}(\\hat{{z}}_s, \\sigma^{{2}}_s)$ with $\\hat{{z}} = {to_latex(tuple(params['zhat']))}$ "
                f"and $\\sigma^{{2}} = {to_latex(tuple(params['sigma2']))}$. Take the prior to be the marginal "
                "$p_{\\mathrm{Pop},\\Psi}(z)$ of $z$. Write the rate "
                "$E \\ln p_{\\Psi}(z|s) / p_{\\mathrm{Pop},\\Psi}(z)$ as a differential mutual information and "
                "compute it in nats.")

    def generate(self, rng: random.Random) -> dict[str, str]:
        weights = rng.choice(["1/2,1/2", "1/4,3/4", "1/3,2/3", "1/3,1/3,1/3", "1/4,1/4,1/2", "1/2,1/4,1/4"])
        count = len(weights.split(","))
        means = rng.sample([sp.Rational(k, 2) for k in range(-6, 7)], count)
        variances = [rng.choice([sp.Rational(1, 4), sp.Integer(1), sp.Integer(4)]) for _ in range(count)]
        return {"weights": weights, "zhat": ",".join(str(m) for m in means),
                "sigma2": ",".join(str(v) for v in variances)}

    def build(self, params: dict, problem: str | None = None) -> Derivation:
        steps, mutual, entropy_s, checks, table, mixture = rate_steps(params)
        # One message, or every message sent to the same Gaussian: z says nothing about s, I = 0 exactly.
        answer = sp.Integer(0) if mixture.separable else sp.Float(mutual, 15)
        labels = [label for label, w in zip(_rate_labels(len(params["weights"])), params["weights"]) if w > 0]
        return Derivation(problem or self.name, self.name, self.params_json(params), self.question(params),
                          steps, answer, 0 if mixture.separable else float(mutual), checks, rate_remarks(params, mutual, entropy_s), [table],
                          mixture_figure(mixture, labels), RATE_ANSWER)


@register
class KLFamily(VaeFamily):
    name = "vae-kl"
    domain = "|mu| <= 10^6, sigma2 in [10^-6, 10^6] (each may be symbolic); read exactly"
    summary = "KL(N(mu, sigma2) || N(0, 1)) = (mu^2 + sigma2 - 1 - ln sigma2)/2, by SymPy integration"
    params = (Param("mu", _parse_real(LIMIT_ABS), None, "encoder mean mu; omitted = the symbol mu"),
              SIGMA2_PARAM)
    names = ("mu", "sigma2")

    def question(self, params: dict) -> str:
        given = _given_text(params, self.names)
        tail = f" for {given}" if given else " as a function of $\\mu$ and $\\sigma^{2}$"
        return ("An encoder sends a message to $q = \\mathcal{N}(\\mu, \\sigma^{2})$ and the prior is "
                f"$p = \\mathcal{{N}}(0, 1)$. Find the rate $\\mathrm{{KL}}(q \\,\\|\\, p)$ in nats{tail}.")

    def generate(self, rng: random.Random) -> dict[str, str]:
        mu = rng.choice(SIMPLE_MEANS)
        variance = rng.choice([sp.Rational(1, 4), sp.Integer(1), sp.Integer(4), sp.Integer(9)])
        if mu == 0 and variance == 1:
            mu = sp.Rational(1, 2)
        return {"mu": str(mu), "sigma2": str(variance)}

    def build(self, params: dict, problem: str | None = None) -> Derivation:
        steps, answer, checks = kl_steps(params, self.names)
        numeric = _all_given(params, self.names)
        figure = kl_figure(params["mu"], params["sigma2"]) if numeric else None
        return Derivation(problem or self.name, self.name, self.params_json(params), self.question(params),
                          steps, answer, numeric_value(answer), checks, KL_REMARKS, [], figure)


# ----------------------------------------------------------- prose and remarks

REPARAM_ANSWER = ("Draw the noise first and set $z = \\hat{z} + \\sigma \\epsilon$ with "
                  "$\\sigma = \\sqrt{\\sigma^{2}}$, the standard deviation. The map is increasing, and the change "
                  "of variables turns the standard normal density of $\\epsilon$ into the normalised Gaussian "
                  "with mean $\\hat{z}$ and variance $\\sigma^{2}$.")

GRADIENT_ANSWER = (
    "No, the discrete string is no obstacle. After reparameterisation the randomness sits in the noise "
    "$\\epsilon$, which does not depend on any parameter, and $z$ is a smooth function of the encoder outputs: "
    "$\\partial z / \\partial \\hat{z} = 1$ and $\\partial z / \\partial \\sigma^{2} = \\epsilon / (2 \\sqrt{\\sigma^{2}})$. "
    "The word string $s$ is observed data, never sampled inside the computation, so nothing has to be "
    "differentiated with respect to it. The distortion $-\\ln P_{\\Theta}(s|z)$ is a differentiable function of "
    "the continuous $z$ for the fixed $s$ (a product of softmax probabilities), so its gradient in $z$ flows "
    "by the chain rule into $\\hat{z}_{\\Psi}(s)$ and $\\sigma^{2}_{\\Psi}(s)$ and on to the encoder "
    "parameters; the rate term is a differentiable function of $z$ and of the encoder outputs as well. "
    "This is the difference from the GAN of Problem 2, where the discrete words are the sampled output and "
    "their derivative with respect to the generator is zero.")

RATE_ANSWER = (
    "With the prior equal to the marginal $p_{\\mathrm{Pop},\\Psi}(z)$, the rate is the mutual information "
    "$I(s; z)$ between the message and its code under the joint distribution "
    "$\\mathrm{Pop}(s)\\, p_{\\Psi}(z|s)$: it equals $h(z) - h(z|s)$, the entropy of the marginal minus the "
    "average entropy of the encoder Gaussians. It is finite even though the densities are continuous: the "
    "encoder noise blurs each code, and for a discrete message $0 \\le I(s; z) \\le H(s)$.")

KL_REMARKS = [Remark("note", (
    "This is the rate of one message when the prior is fixed to $\\mathcal{N}(0, 1)$ instead of the optimal "
    "marginal. Averaged over messages it equals $I(s; z)$ plus the divergence of the marginal from "
    "$\\mathcal{N}(0, 1)$, so it never falls below the mutual information of part 3c."))]


@functools.lru_cache(maxsize=None)
def _kernel_latex() -> str:
    return sp.latex(reparam_model().kernel)


def _slip(zhat, sigma2, eps):
    """The variance put where the standard deviation belongs."""
    return zhat + sigma2 * eps


@functools.lru_cache(maxsize=None)
def _reparam_key_text() -> str:
    return (f"The official key gives ${sp.latex(sp.Eq(Z_OF, ZHAT + sp.Symbol('sigma') * EPS))}$, writing "
            "$\\sigma$ for the square root of the variance, while the question only names the variance "
            "$\\sigma^{2}$. That reading is right, but it is worth saying: putting the variance where the "
            f"standard deviation belongs, ${sp.latex(_slip(ZHAT, SIGMA2, EPS))}$, is a common slip and gives a "
            "sample whose variance is $(\\sigma^{2})^{2}$.")


@functools.lru_cache(maxsize=None)
def _reparam_note_texts() -> tuple[str, str]:
    return ("The question lets $\\sigma^{2}$ be any real number; the construction needs "
            "$\\sigma^{2} > 0$. At $\\sigma^{2} = 0$ the sample is the constant $\\hat{z}$, which has "
            "no density, and a negative variance has no real square root.",
            f"The function is not unique: ${sp.latex(ZHAT - sp.sqrt(SIGMA2) * EPS)}$ has the same "
            "distribution because the noise is symmetric. We take the increasing map, the one the key "
            "uses, and the value above is for that map.")


def reparam_remarks(params: dict) -> list[Remark]:
    text = _reparam_key_text()
    if _all_given(params, ("zhat", "sigma2", "eps")):
        values = {ZHAT: params["zhat"], SIGMA2: params["sigma2"], EPS: params["eps"]}
        right, wrong = reparam_model().forward.xreplace(values), _slip(params["zhat"], params["sigma2"], params["eps"])
        if right != wrong:
            text += f" Here the slip would give ${sp.latex(wrong)}$ instead of ${sp.latex(right)}$."
    return [Remark("key", text)] + [Remark("note", note) for note in _reparam_note_texts()]


@functools.lru_cache(maxsize=None)
def _entropy_latex(entropy) -> str:
    return to_latex(entropy)


def gradient_remarks() -> list[Remark]:
    return [
        Remark("key", "The key writes $y$ for the word string and $\\Sigma_{\\Psi}(y)$ for the encoder variance; "
                      "in the question these are $s$ and $\\sigma^{2}_{\\Psi}(s)$."),
        Remark("key", "The key's conclusion, that there is no problem, agrees with ours. Its reason is that "
                      "$P(s|z)$ can be computed; what matters is that $-\\ln P_{\\Theta}(s|z)$ is "
                      "differentiable in $z$ for the fixed observed $s$, and that $z$ is a differentiable "
                      "function of the encoder outputs. The key gives no gradient formula; it is derived above."),
    ]


def rate_remarks(params: dict, mutual: float, entropy_s: float) -> list[Remark]:
    entropy = _message_entropy(tuple(w for w in params["weights"] if w > 0))[0]
    bound = f"${_entropy_latex(entropy)} \\approx {entropy_s:.4f}$" if entropy != 0 else "$0$"
    return [
        Remark("key", "The key calls this quantity a channel capacity. The capacity of the channel from $s$ to "
                      "$z$ is the largest mutual information over all input distributions; the rate here is the "
                      "mutual information at the one input distribution Pop, which can be smaller. The key also "
                      "writes $y$ for the message $s$."),
        Remark("note", "Each differential entropy depends on the unit of $z$ (rescaling $z$ by $a$ adds "
                       "$\\ln |a|$ to both $h(z)$ and $h(z|s)$), but their difference does not. For a discrete "
                       f"message the rate is at most $H(s)$, here {bound} nats; the computed value is "
                       f"${mutual:.4f}$ nats."),
    ]


# ------------------------------------------------------------- the seed aliases

register_alias("3a", "vae-reparam", "The reparameterisation trick for a Gaussian encoder",
               zhat="1/2", sigma2="4", eps="3/10")
register_alias("3b", "vae-gradient", "Gradients through the sample when s is discrete",
               zhat="1/2", sigma2="4", eps="3/10")
register_alias("3c", "vae-rate", "The rate with the optimal prior as a mutual information",
               weights="1/2,1/2", zhat="-1,1", sigma2="1,1")
