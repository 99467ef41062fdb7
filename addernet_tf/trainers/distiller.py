# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""`Distiller`: teacher CNN and student ANN trained in one `train_step`.

One forward pass of each network per step. The teacher learns from
cross-entropy only, through its own optimizer; the student learns from

    L = H(y_s, y_gt) + α·T²·KL(y_t ‖ y_s) + β·L_feat      (Eq. 14 for PKKD)

through the other, where `L_feat` is a `trainers.losses.FeatureLoss` plug-in
(PKKD's kernel heads, NST/"MMD", AT, SP) on the models' taps. Teacher outputs
enter the student's loss through `tf.stop_gradient`: nothing but the teacher's
cross-entropy ever reaches the teacher's weights.

Losses are summed per example and divided by the GLOBAL batch size, and the
Keras optimizers sum gradients over replicas, so a step is the same under
the default strategy, `MirroredStrategy` or `MultiWorkerMirroredStrategy`.
"""

import keras
import tensorflow as tf

from addernet_tf.models import tap_layers, tap_like, with_taps
from addernet_tf.trainers import losses as losses_lib

__all__ = ["Distiller", "TEACHER_MODES"]

TEACHER_MODES = ("progressive", "fixed")


def _tap_mismatch(s_taps, t_taps, kind):
    """The first difference between the paired taps (by position), or None."""
    if not s_taps or not t_taps:
        which = "student" if not s_taps else "teacher"
        return (f"the {which} has no {kind!r} taps: addernet_tf.models builds both kinds, "
                "addernet_tf.adderize makes 'layer' taps")
    for i, (s, t) in enumerate(zip(s_taps, t_taps)):
        s_shape, t_shape = tuple(s.output.shape), tuple(t.output.shape)
        if s_shape != t_shape:
            return (f"{kind!r} tap {i} differs: student {s.name!r} {s_shape}, "
                    f"teacher {t.name!r} {t_shape}")
    if len(s_taps) != len(t_taps):
        first = min(len(s_taps), len(t_taps))
        which, extra = ("student", s_taps) if len(s_taps) > first else ("teacher", t_taps)
        return (f"the student has {len(s_taps)} {kind!r} taps and the teacher "
                f"{len(t_taps)}: tap {first} ({extra[first].name!r}) is the {which}'s alone")
    return None


class Distiller(keras.Model):
    """Teacher and student in one `keras.Model`.

    Args:
      student: `keras.Model`, images `[N, H, W, C]` → logits `[N, K]`.
      teacher: same interface, or None (the `cnn`/`ann` baselines: the
        student alone on cross-entropy). For an `adderize`d student it may be
        the original CNN without taps: its layers are then tapped where the
        student's are (`addernet_tf.models.tap_like`).
      feature_loss: a `FeatureLoss` (needs `teacher`), or None.
      alpha: weight of the logit KD term (needs `teacher`; 0 disables it).
      beta: weight of the feature loss.
      temperature: KD temperature T.
      teacher_mode: `"progressive"`: the teacher trains at the same time, on
        cross-entropy only (Alg. 1); `"fixed"`: a trained teacher, frozen
        (BN in inference mode, no teacher optimizer).
      tap_kind: which `Tap`s the feature loss reads (`"layer"` or `"block"`).
      student_weight_decay, teacher_weight_decay: coupled L2 (`g += wd·w` on
        every trainable weight of that network, as PyTorch's SGD does).
    """

    def __init__(self, student, teacher=None, feature_loss=None, alpha=0.0, beta=0.0,
                 temperature=1.0, teacher_mode="progressive", tap_kind="layer",
                 student_weight_decay=0.0, teacher_weight_decay=0.0, **kwargs):
        super().__init__(**kwargs)
        if teacher_mode not in TEACHER_MODES:
            raise ValueError(f"`teacher_mode` must be one of {TEACHER_MODES}, got {teacher_mode!r}")
        for arg, value in (("alpha", alpha), ("beta", beta),
                           ("student_weight_decay", student_weight_decay),
                           ("teacher_weight_decay", teacher_weight_decay)):
            if not value >= 0:
                raise ValueError(f"`{arg}` must be >= 0, got {value!r}")
        if not temperature > 0:
            raise ValueError(f"`temperature` must be > 0, got {temperature!r}")
        if teacher is None and (feature_loss is not None or alpha > 0):
            raise ValueError("`teacher` is None, but `feature_loss` or `alpha` > 0 needs one")
        self.student = student
        self.teacher = teacher
        self.feature_loss = feature_loss
        self.alpha, self.beta, self.temperature = float(alpha), float(beta), float(temperature)
        self.teacher_mode = teacher_mode
        self.student_weight_decay = float(student_weight_decay)
        self.teacher_weight_decay = float(teacher_weight_decay)
        self.num_taps = 0
        if feature_loss is not None:
            s_taps, t_taps = tap_layers(student, tap_kind), tap_layers(teacher, tap_kind)
            tapped_teacher = teacher
            if s_taps and not t_taps and tap_kind == "layer":
                tapped_teacher = tap_like(teacher, student)  # shares the teacher's weights
                t_taps = tap_layers(tapped_teacher, tap_kind)
            problem = _tap_mismatch(s_taps, t_taps, tap_kind)
            if problem:
                raise ValueError(problem)
            self.num_taps = len(s_taps)
            self._student_net = with_taps(student, tap_kind)
            self._teacher_net = with_taps(tapped_teacher, tap_kind)
            feature_loss.configure(s_taps, t_taps)
        if teacher is not None and teacher_mode == "fixed":
            teacher.trainable = False
        self._trackers = {}
        for name in self._tracked_names():
            self._trackers[name] = keras.metrics.Mean(name=name)
        self.student_accuracy = keras.metrics.SparseCategoricalAccuracy(name="student_accuracy")
        self.teacher_accuracy = keras.metrics.SparseCategoricalAccuracy(name="teacher_accuracy")
        self.built = True

    def _tracked_names(self):
        names = ["student_loss", "student_ce"]
        if self.teacher is not None:
            names.append("teacher_ce")
        if self.alpha > 0:
            names.append("kd")
        if self.feature_loss is not None:
            names.append("feature")
            names += [f"feature_{i}" for i in range(self.num_taps)]
        return names

    def compile(self, student_optimizer, teacher_optimizer=None, **kwargs):
        """Two optimizers; `teacher_optimizer` is needed for a progressive teacher."""
        progressive = self.teacher is not None and self.teacher_mode == "progressive"
        if progressive and teacher_optimizer is None:
            raise ValueError("a progressive teacher needs `teacher_optimizer`")
        super().compile(optimizer=student_optimizer, **kwargs)
        self.student_optimizer = student_optimizer
        self.teacher_optimizer = teacher_optimizer if progressive else None
        self.student_optimizer.build(self._student_variables())
        if self.teacher_optimizer is not None:
            self.teacher_optimizer.build(self.teacher.trainable_variables)

    @property
    def metrics(self):
        found = list(self._trackers.values()) + [self.student_accuracy]
        if self.teacher is not None:
            found.append(self.teacher_accuracy)
        return found

    def _student_variables(self):
        variables = list(self.student.trainable_variables)
        if self.feature_loss is not None:
            variables += self.feature_loss.trainable_variables
        return variables

    def _forward(self, net, x, training, with_features):
        if with_features:
            logits, features = (self._student_net if net is self.student else
                                self._teacher_net)(x, training=training)
            return logits, list(features)
        return net(x, training=training), []

    @staticmethod
    def _global_batch(x):
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return tf.cast(tf.shape(x)[0] * replicas, tf.float32)

    @staticmethod
    def _decayed(grads, variables, decay):
        if decay == 0.0:
            return grads
        # Each replica adds its share: the optimizer sums gradients over replicas.
        decay = decay / tf.distribute.get_strategy().num_replicas_in_sync
        return [g if g is None else g + decay * tf.cast(v, g.dtype)
                for g, v in zip(grads, variables)]

    def _student_loss(self, y, s_logits, s_features, t_logits, t_features, global_batch):
        terms = {"student_ce": losses_lib.cross_entropy(y, s_logits)}
        total = terms["student_ce"]
        if self.alpha > 0:
            terms["kd"] = losses_lib.kd_loss(s_logits, t_logits, self.temperature)
            total = total + self.alpha * terms["kd"]
        per_tap = None
        if self.feature_loss is not None:
            terms["feature"], per_tap = self.feature_loss(s_features, t_features)
            total = total + self.beta * terms["feature"]
        terms["student_loss"] = total
        return tf.reduce_sum(total) / global_batch, terms, per_tap

    def train_step(self, data):
        x, y = data[0], data[1]
        global_batch = self._global_batch(x)
        with_features = self.feature_loss is not None
        progressive = self.teacher_optimizer is not None
        with tf.GradientTape(persistent=True) as tape:
            t_logits, t_features = None, []
            if self.teacher is not None:
                t_logits, t_features = self._forward(self.teacher, x, progressive, with_features)
                teacher_ce = losses_lib.cross_entropy(y, t_logits)
                teacher_loss = tf.reduce_sum(teacher_ce) / global_batch
                t_logits = tf.stop_gradient(t_logits)
                t_features = [tf.stop_gradient(f) for f in t_features]
            s_logits, s_features = self._forward(self.student, x, True, with_features)
            student_loss, terms, per_tap = self._student_loss(
                y, s_logits, s_features, t_logits, t_features, global_batch)

        s_vars = self._student_variables()
        s_grads = tape.gradient(student_loss, s_vars)
        s_grads = self._decayed(s_grads[:len(self.student.trainable_variables)],
                                self.student.trainable_variables,
                                self.student_weight_decay) + s_grads[
                                    len(self.student.trainable_variables):]
        self.student_optimizer.apply_gradients(zip(s_grads, s_vars))
        if progressive:
            t_vars = self.teacher.trainable_variables
            t_grads = self._decayed(tape.gradient(teacher_loss, t_vars), t_vars,
                                    self.teacher_weight_decay)
            self.teacher_optimizer.apply_gradients(zip(t_grads, t_vars))
        del tape

        if self.teacher is not None:
            terms["teacher_ce"] = teacher_ce
            self.teacher_accuracy.update_state(y, t_logits)
        self.student_accuracy.update_state(y, s_logits)
        for name, value in terms.items():
            self._trackers[name].update_state(value)
        if per_tap is not None:
            for i in range(self.num_taps):
                self._trackers[f"feature_{i}"].update_state(per_tap[i])
        logs = {m.name: m.result() for m in self.metrics}
        if self.feature_loss is not None:
            logs.update(self.feature_loss.monitored())
        return logs

    def test_step(self, data):
        x, y = data[0], data[1]
        s_logits = self.student(x, training=False)
        self._trackers["student_ce"].update_state(losses_lib.cross_entropy(y, s_logits))
        self.student_accuracy.update_state(y, s_logits)
        if self.teacher is not None:
            t_logits = self.teacher(x, training=False)
            self._trackers["teacher_ce"].update_state(losses_lib.cross_entropy(y, t_logits))
            self.teacher_accuracy.update_state(y, t_logits)
        names = {"student_ce", "teacher_ce", "student_accuracy", "teacher_accuracy"}
        return {m.name: m.result() for m in self.metrics if m.name in names}

    def call(self, inputs, training=False):
        """The student's logits: inference is the plain student."""
        return self.student(inputs, training=training)
