"""1-D convolutional autoencoder over a vector treated as a one-channel sequence."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Conv1dAutoEncoderNet"]

#: Largest dense equivalent (in elements) of one convolution used at inference.
DENSE_MAX_ELEMENTS = 1 << 20


class Conv1dAutoEncoderNet(nn.Module):
    """Conv1d encoder/decoder for ``(n, length)`` vectors or ``(n, channels, length)`` series.

    Two strided convolutions halve the length twice; a linear bottleneck of size
    ``latent_dim`` sits between encoder and decoder; transposed convolutions restore the
    length (cropped back to the input length).

    In evaluation mode without gradients (scoring), each convolution runs as the dense
    matrix it equals for this fixed input length, built once from the current weights
    and rebuilt whenever they change. For short vectors (a table's rows) one matrix
    product is several times faster on CPU than a small-channel convolution; the result
    is the same up to float rounding. Layers whose matrix would exceed
    ``DENSE_MAX_ELEMENTS`` (long series) keep the convolution.

    Parameters
    ----------
    length : int
        Input length (number of features for a vector).
    channels : int, default 1
        Input channels.
    width : int, default 32
        Channels of the first convolution (the second has twice as many).
    latent_dim : int, default 8
        Bottleneck size.
    """

    def __init__(
        self, length: int, channels: int = 1, width: int = 32, latent_dim: int = 8
    ) -> None:
        super().__init__()
        self.length = int(length)
        self.channels = int(channels)
        padded = ((self.length + 3) // 4) * 4
        self.padded = padded
        self.encoder = nn.Sequential(
            nn.Conv1d(channels, width, 5, stride=2, padding=2),
            nn.LeakyReLU(0.1),
            nn.Conv1d(width, 2 * width, 5, stride=2, padding=2),
            nn.LeakyReLU(0.1),
        )
        flat = 2 * width * (padded // 4)
        self.to_latent = nn.Linear(flat, latent_dim)
        self.from_latent = nn.Sequential(nn.Linear(latent_dim, flat), nn.LeakyReLU(0.1))
        self.decoder = nn.Sequential(
            nn.ConvTranspose1d(2 * width, width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.1),
            nn.ConvTranspose1d(width, channels, 4, stride=2, padding=1),
        )
        self._width = width
        self._dense: tuple[tuple[float, ...], list[tuple[torch.Tensor, torch.Tensor]]] | None = None

    def _dense_layers(self) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
        """``(matrix, bias)`` of each convolution on flattened input, or None if too large."""
        # the weights' identity and sums: fused optimizers update parameters in place
        # without bumping their version counter, so the sums are what shows an update
        params = list(self.parameters())
        sums = torch.stack([p.detach().sum().to(torch.float64) for p in params]).tolist()
        key = (*(p.data_ptr() for p in params), *sums)
        if self._dense is not None and self._dense[0] == key:
            return self._dense[1]
        w, c, n = self._width, self.channels, self.padded
        shapes = [(c, n), (w, n // 2), (2 * w, n // 4), (w, n // 2), (c, n)]
        if any(a[0] * a[1] * b[0] * b[1] > DENSE_MAX_ELEMENTS
               for a, b in zip(shapes, shapes[1:], strict=False)):
            return None
        layers = [self.encoder[0], self.encoder[2], self.decoder[0], self.decoder[2]]
        dense = []
        with torch.no_grad():
            for i, (layer, (ch, ln)) in enumerate(zip(layers, shapes[:4], strict=True)):
                # the first matrix takes the unpadded input (padding is zeros: its rows
                # would contribute nothing); the last one returns only the real positions
                real = self.length if i == 0 else ln
                eye = torch.eye(ch * real, dtype=layer.weight.dtype, device=layer.weight.device)
                basis = nn.functional.pad(eye.view(-1, ch, real), (0, ln - real))
                fn = (nn.functional.conv1d if isinstance(layer, nn.Conv1d)
                      else nn.functional.conv_transpose1d)
                out = fn(basis, layer.weight, None, layer.stride, layer.padding)
                if i == len(layers) - 1:
                    out = out[..., : self.length]
                bias = layer.bias.repeat_interleave(out.shape[-1])
                dense.append((out.flatten(1).contiguous(), bias))
        self._dense = (key, dense)
        return dense

    def _forward_dense(self, x: torch.Tensor, dense: list[tuple[torch.Tensor, torch.Tensor]]
                       ) -> torch.Tensor:
        slope = self.encoder[1].negative_slope
        h = x.reshape(x.shape[0], self.channels * self.length)
        for i, (matrix, bias) in enumerate(dense):
            if i == 2:  # two encoder convolutions done: through the bottleneck
                h = self.from_latent(self.to_latent(h))
            h = torch.addmm(bias, h, matrix)
            if i < len(dense) - 1:
                h = nn.functional.leaky_relu(h, slope, inplace=True)
        return h.reshape(x.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training and not torch.is_grad_enabled():
            dense = self._dense_layers()
            if dense is not None:
                return self._forward_dense(x, dense)
        squeeze = x.dim() == 2
        h = x.unsqueeze(1) if squeeze else x
        if self.padded != self.length:
            h = nn.functional.pad(h, (0, self.padded - self.length))
        z = self.to_latent(self.encoder(h).flatten(1))
        h = self.from_latent(z).view(x.shape[0], 2 * self._width, self.padded // 4)
        out = self.decoder(h)[..., : self.length]
        return out.squeeze(1) if squeeze else out
