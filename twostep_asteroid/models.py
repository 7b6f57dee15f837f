"""Models of the two-step method: the step-1 front end and the step-2 ``TwoStepTDCN``."""
import torch
from torch import nn

from asteroid.models import register_model
from asteroid.models.base_models import BaseEncoderMaskerDecoder, _unsqueeze_to_3d
from asteroid.utils.torch_utils import pad_x_to_y
from asteroid_filterbanks import Decoder, Encoder

from .filterbanks import TwoStepFB
from .masknn import TDCN
from .sources import load_model_conf
from .targets import ideal_latent_masks, ideal_latent_targets, with_residual_source


def _software_versions():
    """Versions as plain strings: ``torch.__version__`` is a ``TorchVersion`` object, which
    ``torch.load(weights_only=True)`` refuses to unpickle (asteroid 0.7's ``serialize`` stores it)."""
    import asteroid
    import pytorch_lightning as pl

    return {
        "torch_version": str(torch.__version__),
        "pytorch_lightning_version": str(pl.__version__),
        "asteroid_version": str(asteroid.__version__),
    }


class _SerializableMixin:
    """``serialize`` / ``from_pretrained`` that round-trip with ``torch.load(weights_only=True)``."""

    #: The model this one was fine-tuned from (``step2.init_from``, as given: a Hub id, folder or
    #: file), or ``None``. Stored as ``infos["init_from"]`` and restored by :meth:`from_pretrained`,
    #: so that it survives step 3 and Hub packaging.
    init_from = None

    def serialize(self):
        """Return a dict of plain types and tensors (``model_name``, ``model_args``,
        ``state_dict``, ``infos``), safe to ``torch.save`` and to load with ``weights_only=True``."""
        infos = {"software_versions": _software_versions()}
        if self.init_from:
            infos["init_from"] = str(self.init_from)
        return {
            "model_name": self.__class__.__name__,
            "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()},
            "model_args": self.get_model_args(),
            "infos": infos,
        }

    @classmethod
    def from_pretrained(cls, pretrained_model_conf_or_path, *args, **kwargs):
        """Build a model from a serialized dict, a local file or folder, a Hub id or a Hub URL.

        Args:
            pretrained_model_conf_or_path (dict or str): Output of :meth:`serialize`, a path to a
                ``.pth``/``.safetensors`` file or to a folder written by
                :func:`twostep_asteroid.serialization.save_pretrained`, a Hub id
                ``org/name[@revision]`` or an ``https://huggingface.co/org/name`` URL.
            *args, **kwargs: Extra constructor arguments, overriding the stored ones.

        Returns:
            The model, with its weights loaded.
        """
        conf = load_model_conf(pretrained_model_conf_or_path)
        name = conf["model_name"]
        if name != cls.__name__:
            raise ValueError(f"The checkpoint holds a {name}, not a {cls.__name__}.")
        model_args = dict(conf["model_args"], **kwargs)
        model = cls(*args, **model_args)
        model.load_state_dict(conf["state_dict"])
        model.init_from = (conf.get("infos") or {}).get("init_from")
        return model


class TwoStepFrontEnd(_SerializableMixin, nn.Module):
    """Step 1 of the two-step method: the learned encoder/decoder and its ideal latent targets.

    Args:
        n_src (int): Number of sources. With one source the front end learns on
            (source, mixture - source), see :func:`~twostep_asteroid.targets.with_residual_source`.
        n_filters (int): Number of bases N.
        kernel_size (int): Filter length L.
        stride (int, optional): Hop; defaults to ``kernel_size // 2``.
        sample_rate (float): Sample rate of the audio.

    References
        Tzinis et al., "Two-Step Sound Source Separation: Training on Learned Latent Targets",
        ICASSP 2020, arXiv:1910.09804.
    """

    def __init__(self, n_src=2, n_filters=256, kernel_size=21, stride=None, sample_rate=8000.0):
        super().__init__()
        self.n_src = n_src
        self.n_latent = max(n_src, 2)
        self.encoder = Encoder(TwoStepFB(n_filters, kernel_size, stride, sample_rate, bias=True))
        self.decoder = Decoder(
            TwoStepFB(n_filters, kernel_size, stride, sample_rate, n_groups=self.n_latent, relu=False)
        )

    @property
    def sample_rate(self):
        return self.encoder.filterbank.sample_rate

    def encode(self, wav):
        """``[batch, time] -> [batch, N, frames]``; ``[batch, C, time] -> [batch, C, N, frames]``."""
        if wav.ndim == 2:
            return self.encoder(wav.unsqueeze(1))
        batch, channels, time = wav.shape
        latents = self.encoder(wav.reshape(batch * channels, 1, time))
        return latents.reshape(batch, channels, *latents.shape[-2:])

    def decode(self, latents, like):
        """``[batch, n_latent, N, frames] -> [batch, n_latent, time]``, padded to ``like``'s length."""
        return pad_x_to_y(self.decoder(latents), like)

    def training_sources(self, mixture, sources):
        """The sources the front end learns to split the mixture into (adds the residual for 1 source)."""
        return with_residual_source(sources, mixture) if sources.shape[1] == 1 else sources

    def ideal_latents(self, mixture, sources):
        """Encoded mixture, ideal latent masks and ideal latent targets.

        Args:
            mixture (torch.Tensor): ``[batch, time]``.
            sources (torch.Tensor): ``[batch, n_src, time]``.

        Returns:
            tuple: ``(encoded_mixture [B, N, F], masks [B, n_latent, N, F], targets [B, n_latent, N, F])``.
        """
        sources = self.training_sources(mixture, sources)
        encoded_mixture = self.encode(mixture)
        masks = ideal_latent_masks(self.encode(sources))
        return encoded_mixture, masks, ideal_latent_targets(masks, encoded_mixture)

    def forward(self, mixture, sources):
        """Oracle separation through the ideal latent masks.

        Returns:
            dict: ``masks``, ``targets`` (latents) and ``estimates`` (decoded targets,
            ``[batch, n_latent, time]``: the oracle upper bound of this front end).
        """
        _, masks, targets = self.ideal_latents(mixture, sources)
        return {"masks": masks, "targets": targets, "estimates": self.decode(targets, mixture)}

    def get_model_args(self):
        fb = self.encoder.filterbank
        return {
            "n_src": self.n_src,
            "n_filters": fb.n_filters,
            "kernel_size": fb.kernel_size,
            "stride": fb.stride,
            "sample_rate": fb.sample_rate,
        }


class _TwoStepModel(_SerializableMixin, BaseEncoderMaskerDecoder):
    """A masker on a step-1 :class:`TwoStepFrontEnd`: what every step-2 model shares.

    The front end's encoder and decoder are the model's; the front end is frozen unless
    ``train_front_end`` (end-to-end baseline, step 3). Subclasses build the masker and say how to
    rebuild it (``get_model_args``).
    """

    def __init__(self, front_end, masker, n_src, train_front_end=False):
        super().__init__(front_end.encoder, masker, front_end.decoder)
        self.n_src = n_src
        # The front end shares the encoder/decoder modules registered above; holding it in a list keeps
        # it out of the state dict, whose keys stay Asteroid's ("encoder.", "masker.", "decoder.").
        self._front_end = [front_end]
        self.set_front_end_trainable(train_front_end)

    @staticmethod
    def _front_end_for(n_src, n_filters, kernel_size, stride, sample_rate, front_end):
        if front_end is None:
            return TwoStepFrontEnd(n_src, n_filters, kernel_size, stride, sample_rate)
        if front_end.n_src != n_src:
            raise ValueError(f"front_end was trained for {front_end.n_src} sources, not {n_src}")
        return front_end

    @classmethod
    def from_front_end(cls, front_end, **masker_kwargs):
        """Build a model around a trained step-1 :class:`TwoStepFrontEnd`."""
        args = front_end.get_model_args()
        return cls(**args, front_end=front_end, **masker_kwargs)

    @property
    def front_end(self):
        return self._front_end[0]

    @property
    def train_front_end(self):
        """Whether the encoder trains (end to end, step 3): the two-step method freezes it."""
        return any(p.requires_grad for p in self.encoder.parameters())

    @property
    def train_decoder(self):
        return any(p.requires_grad for p in self.decoder.parameters())

    def set_front_end_trainable(self, trainable):
        for param in self.front_end.parameters():
            param.requires_grad_(trainable)

    def set_decoder_trainable(self, trainable):
        """Train the decoder alone (``step2.train_decoder``). The encoder stays frozen, so the ideal
        latent targets, which only the encoder defines, stay fixed: the latent loss still holds,
        and the decoder adapts to the estimated latents instead of only to the ideal ones."""
        for param in self.decoder.parameters():
            param.requires_grad_(trainable)

    def forward_decoder(self, masked_tf_rep):
        # With one source the front end also carries the residual; only the source is returned.
        return super().forward_decoder(masked_tf_rep)[:, : self.n_src]

    def estimate_latents(self, wav):
        """Estimated latent sources, for the step-2 loss.

        Args:
            wav (torch.Tensor): Mixture ``[batch, time]``.

        Returns:
            tuple: ``(estimated latents [B, n_latent, N, F], encoded mixture [B, N, F])``.
        """
        tf_rep = self.forward_encoder(_unsqueeze_to_3d(wav))
        return self.apply_masks(tf_rep, self.forward_masker(tf_rep)), tf_rep

    def decode_latents(self, latents, like):
        """Decode ``[B, n_latent, N, F]`` latents to ``[B, n_src, time]`` waveforms."""
        return pad_x_to_y(self.forward_decoder(latents), like)

    def _front_end_args(self):
        fe_args = self.front_end.get_model_args()
        return {k: fe_args[k] for k in ("n_src", "n_filters", "kernel_size", "stride", "sample_rate")}


class TwoStepTDCN(_TwoStepModel):
    """Two-step separation model: the (frozen) learned front end and a TDCN masker.

    Keyword names follow :class:`asteroid.models.ConvTasNet`.

    Args:
        n_src (int): Number of sources.
        n_filters (int): Number of bases N of the front end.
        kernel_size (int): Filter length L.
        stride (int, optional): Hop; defaults to ``kernel_size // 2``.
        bn_chan (int): Bottleneck channels B.
        hid_chan (int): Hidden channels H.
        n_blocks (int): Blocks per repeat X (dilations ``1 .. 2**(X-1)``).
        n_repeats (int): Repeats R.
        conv_kernel_size (int): Depthwise kernel size P.
        norm_type (str): ``"gLN"`` (default), ``"cLN"``, ``"BN"``...
        mask_act (str): ``"softmax"`` over sources (paper).
        mask_head (str): ``"toeplitz"`` (paper) or ``"dense"``, see :class:`~twostep_asteroid.masknn.TDCN`.
        conv_impl (str): Depthwise conv implementation, see :class:`~twostep_asteroid.layers.DilatedDepthwiseConv1d`.
        skip_chan (int): Conv-TasNet-style skip connections (0: none, the paper's TDCN).
        feature_norm (bool): Per-basis normalisation of the encoded mixture before the masker
            (off in the paper), see :class:`~twostep_asteroid.masknn.TDCN`.
        causal (bool): Causal masker (left-padded convolutions, ``norm_type="cLN"``; see
            :class:`~twostep_asteroid.masknn.TDCN`). The encoder and decoder are causal as they
            are: output sample n depends on input samples up to the end of the last frame that
            covers it, so the algorithmic latency is the frame length L (:attr:`latency_samples`).
            :class:`~twostep_asteroid.streaming.StreamingTwoStep` runs such a model chunk by chunk.
        sample_rate (float): Sample rate of the audio.
        front_end (TwoStepFrontEnd, optional): A trained step-1 front end to build around; its
            N, L, stride and sample rate override the arguments above. See :meth:`from_front_end`.
        train_front_end (bool): Leave the front end trainable (end-to-end baseline). The two-step
            method freezes it (default).

    Examples
        >>> model = TwoStepTDCN(n_src=2, n_filters=256, kernel_size=21, bn_chan=256, hid_chan=512,
        ...                     n_blocks=8, n_repeats=4)  # the paper's configuration
        >>> model = TwoStepTDCN.from_front_end(TwoStepFrontEnd.from_pretrained("step1.pth"))

    References
        Tzinis et al., "Two-Step Sound Source Separation: Training on Learned Latent Targets",
        ICASSP 2020, arXiv:1910.09804.
    """

    def __init__(self, n_src, n_filters=256, kernel_size=21, stride=None, bn_chan=256, hid_chan=512,
                 n_blocks=8, n_repeats=4, conv_kernel_size=3, norm_type="gLN", mask_act="softmax",
                 mask_head="toeplitz", conv_impl="auto", skip_chan=0, feature_norm=False, sample_rate=8000.0, front_end=None,
                 train_front_end=False, causal=False):
        front_end = self._front_end_for(n_src, n_filters, kernel_size, stride, sample_rate, front_end)
        fb = front_end.encoder.filterbank
        masker = TDCN(fb.n_filters, front_end.n_latent, n_blocks=n_blocks, n_repeats=n_repeats,
                      bn_chan=bn_chan, hid_chan=hid_chan, conv_kernel_size=conv_kernel_size,
                      norm_type=norm_type, mask_act=mask_act, mask_head=mask_head,
                      conv_impl=conv_impl, skip_chan=skip_chan, feature_norm=feature_norm,
                      causal=causal)
        super().__init__(front_end, masker, n_src, train_front_end)

    @property
    def causal(self):
        return self.masker.causal

    @property
    def latency_samples(self):
        """Algorithmic latency of a causal model, in samples: the frame length L. Output sample
        ``n`` is final once input sample ``(n // S) * S + L - 1`` is in: a wait of L - 1 samples
        after sample n arrives at worst, i.e. L samples of input to collect. ``None`` for a
        non-causal model (it looks ahead by its receptive field)."""
        return self.encoder.filterbank.kernel_size if self.causal else None

    def get_model_args(self):
        fe_args = self.front_end.get_model_args()
        masker = self.masker.get_config()
        return {
            "n_src": self.n_src,
            "n_filters": fe_args["n_filters"],
            "kernel_size": fe_args["kernel_size"],
            "stride": fe_args["stride"],
            "bn_chan": masker["bn_chan"],
            "hid_chan": masker["hid_chan"],
            "n_blocks": masker["n_blocks"],
            "n_repeats": masker["n_repeats"],
            "conv_kernel_size": masker["conv_kernel_size"],
            "norm_type": masker["norm_type"],
            "mask_act": masker["mask_act"],
            "mask_head": masker["mask_head"],
            "conv_impl": masker["conv_impl"],
            "skip_chan": masker["skip_chan"],
            "feature_norm": masker["feature_norm"],
            "causal": masker["causal"],
            "sample_rate": fe_args["sample_rate"],
        }


register_model(TwoStepTDCN)


class TwoStepSeparator(_TwoStepModel):
    """Two-step separation model with the masker as a choice: the learned front end and our TDCN
    or one of Asteroid's maskers (SuDORMRF, SuDORMRFImproved, DPRNN, TDConvNet).

    Step 2 trains it like :class:`TwoStepTDCN` (same front end, same loss): the masker's masks
    times the encoded mixture are the latent estimates. :class:`TwoStepTDCN` stays the paper's
    model; this class is for the other separators.

    Args:
        n_src (int): Number of sources.
        n_filters (int): Number of bases N of the front end.
        kernel_size (int): Filter length L.
        stride (int, optional): Hop; defaults to ``kernel_size // 2``.
        sample_rate (float): Sample rate of the audio.
        masker_type (str): A name of :data:`twostep_asteroid.separators.MASKERS`
            (``"sudormrf"``, ``"sudormrf_improved"``, ``"dprnn"``, ``"tdconvnet"``, ``"tdcn"``).
        masker_args (dict, optional): Keyword arguments of that masker class (Asteroid's names;
            ``in_chan`` and ``n_src`` come from the front end). Its defaults when omitted.
        front_end (TwoStepFrontEnd, optional): A trained step-1 front end to build around; its
            N, L, stride and sample rate override the arguments above. See :meth:`from_front_end`.
        train_front_end (bool): Leave the front end trainable (end to end, step 3).

    Examples
        >>> model = TwoStepSeparator.from_front_end(TwoStepFrontEnd.from_pretrained("step1.pth"),
        ...     masker_type="sudormrf", masker_args={"bn_chan": 128, "num_blocks": 8, "mask_act": "softmax"})

    References
        Tzinis et al., "Two-Step Sound Source Separation: Training on Learned Latent Targets",
        ICASSP 2020, arXiv:1910.09804. Tzinis et al., "Sudo rm -rf", MLSP 2020. Luo et al.,
        "Dual-path RNN", ICASSP 2020. Luo & Mesgarani, "Conv-TasNet", TASLP 2019.
    """

    def __init__(self, n_src, n_filters=256, kernel_size=21, stride=None, sample_rate=8000.0,
                 masker_type="sudormrf", masker_args=None, front_end=None, train_front_end=False):
        from .separators import make_masker

        front_end = self._front_end_for(n_src, n_filters, kernel_size, stride, sample_rate, front_end)
        masker = make_masker(masker_type, front_end.encoder.filterbank.n_filters, front_end.n_latent,
                             **dict(masker_args or {}))
        super().__init__(front_end, masker, n_src, train_front_end)
        self.masker_type = masker_type

    def get_model_args(self):
        from .separators import masker_args

        return {**self._front_end_args(), "masker_type": self.masker_type,
                "masker_args": masker_args(self.masker)}


register_model(TwoStepSeparator)


def load_separator(source):
    """A step-2 model (:class:`TwoStepTDCN` or :class:`TwoStepSeparator`, by its stored
    ``model_name``) from anything :meth:`~_SerializableMixin.from_pretrained` takes."""
    conf = load_model_conf(source)
    classes = {cls.__name__: cls for cls in (TwoStepTDCN, TwoStepSeparator)}
    if conf["model_name"] not in classes:
        raise ValueError(f"{source} holds a {conf['model_name']}, not a two-step separation model "
                         f"({', '.join(classes)}).")
    return classes[conf["model_name"]].from_pretrained(conf)
