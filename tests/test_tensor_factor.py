"""factorize and check_modes: balanced splits, and errors that say why and where."""

from __future__ import annotations

import math

import pytest

from accelgen.tensor.factor import FactorizationError, check_modes, factorize


@pytest.mark.parametrize(
    ("n", "d", "multiset"), [(784, 4, [4, 4, 7, 7]), (512, 4, [4, 4, 4, 8]), (1000, 3, [10, 10, 10])]
)
def test_factorize_is_balanced(n, d, multiset):
    modes = factorize(n, d)
    assert math.prod(modes) == n
    assert sorted(modes) == multiset
    # the largest modes sit on the outer cores (rank 1 on one side)
    assert max(modes) in (modes[0], modes[-1])


def test_factorize_single_mode_is_the_dimension():
    assert factorize(797, 1) == (797,)


def test_prime_cannot_be_split_and_padding_is_suggested():
    with pytest.raises(FactorizationError, match=r"797 is prime") as error:
        factorize(797, 4)
    assert isinstance(error.value, ValueError)
    suggested = int(str(error.value).split("pad the dimension to ")[1].split()[0])
    assert suggested > 797
    assert max(factorize(suggested, 4)) / min(factorize(suggested, 4)) <= 3


def test_too_few_prime_factors():
    with pytest.raises(FactorizationError, match=r"2 prime factors, fewer than 4 modes"):
        factorize(2 * 797, 4)


def test_lopsided_split_is_refused():
    with pytest.raises(FactorizationError, match=r"\(2, 797\)"):
        factorize(2 * 797, 2)


def test_check_modes_names_the_layer():
    assert check_modes([7, 4, 4, 7], 784, name="fc1") == (7, 4, 4, 7)
    with pytest.raises(
        ValueError, match=r"layer 'fc1': modes_in \(7, 4, 4, 8\) multiply to 896, not the dimension 784"
    ):
        check_modes([7, 4, 4, 8], 784, name="fc1", what="modes_in")
    with pytest.raises(ValueError, match=r"layer 'fc2'.*positive"):
        check_modes([0, 784], 784, name="fc2")
