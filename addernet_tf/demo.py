"""`make demo`: trains a tiny adder network on real handwritten digits.

    python -m addernet_tf.demo [--epochs 15] [--seed 0]

scikit-learn's bundled 8x8 digits (1,797 images, offline) are split 80/20.
The network is a 3x3 conv stem, two adder layers each followed by batch
normalization and ReLU (AdderNet needs BN after every adder layer), global
average pooling and a linear classifier. The adder layers use the op's
AdderNet gradients and the adaptive learning rate eta * sqrt(k) * dF / ||dF||.
This is a stand-in until the PKKD trainer lands; it shows the op training.
"""

import argparse
import time

import numpy as np
import tensorflow as tf
from sklearn.datasets import load_digits

from addernet_tf.ops import active_backend, adder_conv2d

PAD1 = [[0, 0], [1, 1], [1, 1], [0, 0]]


def load_data(seed):
    digits = load_digits()
    x = (digits.images.astype(np.float32) / 16.0 - 0.5)[..., None]  # [N, 8, 8, 1]
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    split = int(0.8 * len(x))
    return (x[order[:split]], y[order[:split]]), (x[order[split:]], y[order[split:]])


class TinyAdderNet(tf.Module):
    """stem conv 1->16, adder 16->32 (stride 2), adder 32->32, pool, dense 10."""

    def __init__(self, seed):
        init = tf.random.Generator.from_seed(seed)
        self.stem = tf.Variable(init.normal([3, 3, 1, 16]) * 0.5, name="stem")
        self.adder1 = tf.Variable(init.normal([3, 3, 16, 32]), name="adder1")
        self.adder2 = tf.Variable(init.normal([3, 3, 32, 32]), name="adder2")
        self.bn = [(tf.Variable(tf.ones([c])), tf.Variable(tf.zeros([c]))) for c in (16, 32, 32)]
        self.dense = tf.Variable(init.normal([32, 10]) * 0.1, name="dense")
        self.bias = tf.Variable(tf.zeros([10]), name="bias")

    @staticmethod
    def _bn_relu(x, gamma_beta):
        mean, var = tf.nn.moments(x, [0, 1, 2])
        return tf.nn.relu(tf.nn.batch_normalization(x, mean, var, *reversed(gamma_beta), 1e-5))

    def __call__(self, x):
        x = self._bn_relu(tf.nn.conv2d(x, self.stem, 1, PAD1), self.bn[0])
        x = self._bn_relu(adder_conv2d(x, self.adder1, 2, PAD1), self.bn[1])
        x = self._bn_relu(adder_conv2d(x, self.adder2, 1, PAD1), self.bn[2])
        return tf.reduce_mean(x, [1, 2]) @ self.dense + self.bias


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eta", type=float, default=0.2, help="adaptive learning-rate eta")
    args = parser.parse_args(argv)
    for flag in ("epochs", "batch_size"):
        if getattr(args, flag) <= 0:
            parser.error(f"--{flag} must be positive, got {getattr(args, flag)}")

    tf.random.set_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = load_data(args.seed)
    net = TinyAdderNet(args.seed)
    adders = {net.adder1.ref(), net.adder2.ref()}
    variables = net.trainable_variables
    velocity = [tf.Variable(tf.zeros_like(v)) for v in variables]

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(y, net(x)))
        grads = tape.gradient(loss, variables)
        for v, g, m in zip(variables, grads, velocity):
            if v.ref() in adders:  # AdderNet's adaptive learning rate
                k = tf.cast(tf.size(v), tf.float32)
                g = args.eta * tf.sqrt(k) * g / tf.maximum(tf.norm(g), 1e-12)
            m.assign(0.9 * m + g)  # SGD, momentum 0.9, learning rate 0.05
            v.assign_sub(0.05 * m)
        return loss

    print(f"adder op backend: {active_backend()}; {len(x_train)} train / {len(x_test)} test digits")
    dataset = tf.data.Dataset.from_tensor_slices((x_train, y_train))
    start = time.time()
    for epoch in range(args.epochs):
        losses = [float(train_step(x, y)) for x, y in
                  dataset.shuffle(len(x_train), seed=args.seed + epoch).batch(args.batch_size)]
        if epoch % 5 == 4 or epoch == args.epochs - 1:
            print(f"epoch {epoch + 1:3d}  loss {np.mean(losses):.3f}")
    # Batch statistics over the whole held-out set (this demo keeps no running BN averages).
    accuracy = float(np.mean(np.argmax(net(tf.constant(x_test)), -1) == y_test))
    print(f"test accuracy {accuracy:.3f} (chance 0.100) after {time.time() - start:.0f} s")
    return accuracy


if __name__ == "__main__":
    main()
