"""The matching losses, and what every backend must compute for each.

z is the network output before the loss's matching nonlinearity. The per-example
loss sums over output units; the objective is the batch mean plus l2/2 |theta|^2.

| name                    | per-example loss l(z, t)          | dl/dz       | H = d2l/dz2 (closed form)   |
|-------------------------|-----------------------------------|-------------|-----------------------------|
| softmax_cross_entropy   | -log softmax(z)[t]                | p - onehot  | diag(p) - p p^T, p=softmax  |
| sigmoid_cross_entropy   | sum_k BCE(sigmoid(z_k), t_k)      | p - t       | diag(p (1 - p)), p=sigmoid  |
| squared_error           | 1/2 sum_k (z_k - t_k)^2           | z - t       | I                           |

The generalized Gauss-Newton matrix is G = (1/B) sum_i J_i^T H_i J_i (Martens 2010
§4.2; Schraudolph 2002), with J_i the Jacobian of z_i in theta. H_i is PSD for
each of these losses, so G is PSD.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import SpecError, unknown


@dataclass(frozen=True)
class LossInfo:
    """What the rest of hfbench needs to know about a loss, framework-free."""

    name: str
    targets: str  # "labels" (int class ids) or "values" (float array shaped like z)
    output_nonlinearity: str  # applied to z to get the prediction


LOSSES = {
    "softmax_cross_entropy": LossInfo("softmax_cross_entropy", "labels", "softmax"),
    "sigmoid_cross_entropy": LossInfo("sigmoid_cross_entropy", "values", "sigmoid"),
    "squared_error": LossInfo("squared_error", "values", "identity"),
}


def get_loss(name: str, where: str = "loss") -> LossInfo:
    """Look a loss up by name, with a did-you-mean error for unknown names."""
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        raise SpecError(unknown("loss", name, LOSSES, where)) from None
