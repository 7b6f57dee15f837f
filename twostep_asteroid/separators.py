"""The step-2 separator as a choice: our TDCN or one of Asteroid's maskers, by name.

Two-step is a training scheme, not one network: any masker that maps the encoded mixture
``[batch, N, frames]`` to masks ``[batch, n_masks, N, frames]`` can be trained on the frozen front
end's latent targets. Asteroid's maskers are used as they are (their own layers, activations and
``get_config``); this module only maps a name to a class and a configuration section to its
keyword arguments.

=====================  =========================================  ===================
``masker.type``        class                                      configuration keys
=====================  =========================================  ===================
``tdcn``               :class:`twostep_asteroid.masknn.TDCN`      ``masker.*``
``sudormrf``           :class:`asteroid.masknn.SuDORMRF`          ``masker_sudormrf.*``
``sudormrf_improved``  :class:`asteroid.masknn.SuDORMRFImproved`  ``masker_sudormrf.*``
``dprnn``              :class:`asteroid.masknn.DPRNN`             ``masker_dprnn.*``
``tdconvnet``          :class:`asteroid.masknn.TDConvNet`         ``masker_tdconvnet.*``
=====================  =========================================  ===================

All of them return masks ``[batch, n_masks, N, frames]`` after their output activation (the
recipe sets ``mask_act: softmax`` for all: the ideal latent masks are a softmax over sources, see
:func:`~twostep_asteroid.targets.ideal_latent_masks`). The latent estimates are these masks times
the encoded mixture (``BaseEncoderMaskerDecoder.apply_masks``), as for the TDCN.
"""
from asteroid import masknn as asteroid_masknn

from .masknn import TDCN

# masker.type -> (class, configuration section of its keyword arguments)
MASKERS = {
    "tdcn": (TDCN, "masker"),
    "sudormrf": (asteroid_masknn.SuDORMRF, "masker_sudormrf"),
    "sudormrf_improved": (asteroid_masknn.SuDORMRFImproved, "masker_sudormrf"),
    "dprnn": (asteroid_masknn.DPRNN, "masker_dprnn"),
    "tdconvnet": (asteroid_masknn.TDConvNet, "masker_tdconvnet"),
}
# Keys of the configuration sections that are not constructor arguments.
_NOT_ARGS = {"type"}
# Keys of get_config() that the model, not the masker configuration, decides.
_FROM_MODEL = ("in_chan", "n_src", "out_chan")


def masker_class(masker_type):
    """The masker class of a ``masker.type`` name, or ``ValueError`` listing the known ones."""
    try:
        return MASKERS[masker_type][0]
    except KeyError:
        raise ValueError(f"Unknown masker type {masker_type!r}; known: {sorted(MASKERS)}.") from None


def make_masker(masker_type, in_chan, n_src, **masker_args):
    """Build the masker named ``masker_type`` on ``in_chan`` bases for ``n_src`` masks.

    Args:
        masker_type (str): A key of :data:`MASKERS`.
        in_chan (int): Bases N of the front end (the masks have the same size).
        n_src (int): Number of masks (the front end's ``n_latent``).
        **masker_args: Keyword arguments of the class (Asteroid's own names).

    Returns:
        torch.nn.Module: ``[batch, in_chan, frames] -> [batch, n_src, in_chan, frames]``.
    """
    cls = masker_class(masker_type)
    if masker_type.startswith("sudormrf") and in_chan % 2:
        # SuDORMRF's mask layer (a Conv2d over the bases with padding in_chan - in_chan // 2)
        # returns in_chan + 1 rows for an odd in_chan.
        raise ValueError(f"masker.type {masker_type} needs an even number of bases N, got {in_chan}.")
    if masker_type == "dprnn" and masker_args.get("mask_act") == "softmax":
        # asteroid.masknn.DPRNN applies its activation to [batch * n_src, N, frames] with dim=1:
        # a softmax over the bases, not over the sources as the latent targets need.
        raise ValueError("masker.type dprnn: Asteroid's DPRNN takes the softmax over the bases, not the "
                         "sources; use mask_act sigmoid or relu.")
    return cls(in_chan, n_src, **masker_args)


def masker_args(masker):
    """The keyword arguments that rebuild ``masker`` with :func:`make_masker` (from ``get_config``)."""
    return {k: v for k, v in masker.get_config().items() if k not in _FROM_MODEL}


def masker_from_conf(conf):
    """``(masker_type, masker_args)`` of a recipe configuration (its ``masker.type`` and section)."""
    masker_type = conf["masker"]["type"]
    masker_class(masker_type)  # names the known types when unknown
    section = MASKERS[masker_type][1]
    return masker_type, {k: v for k, v in conf[section].items() if k not in _NOT_ARGS}
