"""05_training: the two tracks train the same models from the same weights on the same batches.

Stored records (from the executed notebooks) are compared across tracks, and the same claims
are re-checked directly by training a few steps in both frameworks here.

Tolerances. Losses and logits are float32 computed from identical inputs; the frameworks differ
only in the order of additions inside matrix products and in their softmax/log kernels. One
float32 rounding is ~6e-8 relative; a sum of 64 products and a few steps of SGD compound that
to ~1e-7..1e-6 (the notebooks show ~3e-7 after 20 steps), so rtol=1e-5 leaves a 10x margin while
any real difference (another initial weight, another batch, a missing zero_grad) changes the
loss by 1e-3 or more. Test accuracies after hundreds of steps may differ when a rounding
difference flips a prediction near a decision boundary, so they get two of the 270 test images:
the same tolerance the notebooks declare for their accuracy records and name in their prose.
The resumed run repeats the uninterrupted one exactly on one machine, so its loss gap is held
to 1e-6.
"""

from pathlib import Path

import numpy as np
import pytest

import course_utils as cu
from course_utils import training
from course_utils.checks import check
from course_utils.records import by_name, read_records

cu.quiet()

ROOT = Path(__file__).resolve().parents[1]
LOSS_RTOL = 1e-5
ACCURACY_ATOL = 2 / 270  # two test images
RESUME_ATOL = 1e-6


def records(track):
    return by_name(read_records(ROOT / "notebooks" / "05_training" / f"{track}.ipynb"))


@pytest.fixture(scope="module")
def stored():
    return records("pytorch"), records("tensorflow")


# ---------------------------------------------------------------- the stored records


def test_both_tracks_record_the_same_figures(stored):
    pt, tf = stored
    shared = {
        "first_batch_labels",
        "mlp_parameter_count",
        "mlp_initial_logits",
        "cnn_initial_logits",
        "mlp_first_losses",
        "cnn_first_losses",
        "mlp_test_accuracy",
        "cnn_test_accuracy",
        "resume_max_loss_gap",
        "runtime_rss",
        "train_peak_rss",
        "train_rss_delta",
    }
    assert shared <= set(pt), shared - set(pt)
    assert shared <= set(tf), shared - set(tf)


def test_same_batches_and_same_model(stored):
    pt, tf = stored
    assert pt["first_batch_labels"] == tf["first_batch_labels"]
    assert pt["mlp_parameter_count"] == tf["mlp_parameter_count"] == 64 * 64 + 64 + 64 * 10 + 10


@pytest.mark.parametrize("name", ["mlp_initial_logits", "cnn_initial_logits"])
def test_initial_logits_agree(stored, name):
    pt, tf = stored
    np.testing.assert_allclose(pt[name], tf[name], rtol=LOSS_RTOL, atol=1e-6)


@pytest.mark.parametrize("name", ["mlp_first_losses", "cnn_first_losses"])
def test_first_losses_agree(stored, name):
    pt, tf = stored
    assert len(pt[name]) == len(tf[name]) == 20
    np.testing.assert_allclose(pt[name], tf[name], rtol=LOSS_RTOL)
    assert pt[name][0] != pytest.approx(pt[name][-1], rel=1e-3)  # the losses did move


@pytest.mark.parametrize("name", ["mlp_test_accuracy", "cnn_test_accuracy"])
def test_accuracy_is_a_level_playing_field(stored, name):
    pt, tf = stored
    assert 0.3 < pt[name] <= 1 and 0.3 < tf[name] <= 1  # well above chance (0.1)
    assert abs(pt[name] - tf[name]) <= ACCURACY_ATOL, (pt[name], tf[name])


def test_accuracy_tolerance_is_the_one_the_notebooks_declare():
    for track in ("pytorch", "tensorflow"):
        entries = {
            r["name"]: r
            for r in read_records(ROOT / "notebooks" / "05_training" / f"{track}.ipynb")
        }
        for name in ("mlp_test_accuracy", "cnn_test_accuracy"):
            assert entries[name]["tolerance"]["atol"] == pytest.approx(ACCURACY_ATOL)


def test_a_resumed_run_repeats_the_uninterrupted_one(stored):
    for track in stored:
        assert 0 <= track["resume_max_loss_gap"] <= RESUME_ATOL


def test_memory_records_are_plausible():
    for track in ("pytorch", "tensorflow"):
        entries = {
            r["name"]: r
            for r in read_records(ROOT / "notebooks" / "05_training" / f"{track}.ipynb")
        }
        for name in ("runtime_rss", "train_peak_rss", "train_rss_delta"):
            assert entries[name]["unit"] == "MiB"
        assert entries["runtime_rss"]["value"] > 10
        assert entries["train_peak_rss"]["value"] >= entries["runtime_rss"]["value"] - 1
        assert entries["train_rss_delta"]["value"] >= 0


# ---------------------------------------------------------------- direct cross-framework runs


@pytest.fixture(scope="module")
def frameworks():
    torch = pytest.importorskip("torch")
    tf = pytest.importorskip("tensorflow")
    keras = pytest.importorskip("keras")
    return torch, tf, keras


def torch_cnn(torch):
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64, 10),
    )


def keras_cnn(keras):
    L = keras.layers
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            L.Conv2D(8, 3, padding="same", activation="relu"),
            L.MaxPooling2D(2),
            L.Conv2D(16, 3, padding="same", activation="relu"),
            L.MaxPooling2D(2),
            L.Flatten(),
            L.Dense(10),
        ]
    )


def models(kind, frameworks, seed=0):
    """(torch model, keras model, weights, torch input layout fn) of one kind, same initial weights."""
    torch, tf, keras = frameworks
    if kind == "mlp":
        weights = training.init_weights(training.MLP_SPEC, seed)
        pt = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
        km = keras.Sequential(
            [keras.Input((64,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)]
        )
        return (
            training.load_torch(pt, weights),
            training.load_keras(km, weights),
            weights,
            (lambda X: X, lambda X: X),
        )
    weights = training.init_weights(training.CNN_SPEC, seed)
    return (
        training.load_torch(torch_cnn(torch), weights),
        training.load_keras(keras_cnn(keras), weights),
        weights,
        (lambda X: X.reshape(-1, 1, 8, 8), lambda X: X.reshape(-1, 8, 8, 1)),
    )


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_training_steps_agree_across_frameworks(frameworks, kind):
    torch, tf, keras = frameworks
    pt, km, weights, (to_pt, to_tf) = models(kind, frameworks)
    splits = cu.load_digits(seed=0)
    n_steps = 12
    pt_step = training.torch_step(
        pt, torch.nn.CrossEntropyLoss(), torch.optim.SGD(pt.parameters(), lr=0.1)
    )
    tf_step = training.tape_step(
        km,
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        keras.optimizers.SGD(learning_rate=0.1),
    )
    loader = cu.data.torch_loader(to_pt(splits.X_train), splits.y_train, 32, seed=0, order="numpy")
    dataset = cu.data.tf_dataset(to_tf(splits.X_train), splits.y_train, 32, seed=0, order="numpy")
    pt_losses, tf_losses = [], []
    for (Xp, yp), (Xt, yt) in zip(loader, dataset, strict=False):
        assert np.array_equal(yp.numpy(), yt.numpy())  # the same batch in both
        pt_losses.append(pt_step(Xp, yp))
        with tf.device("/CPU:0"):
            tf_losses.append(tf_step(Xt, yt))
        if len(pt_losses) == n_steps:
            break
    np.testing.assert_allclose(pt_losses, tf_losses, rtol=LOSS_RTOL)
    moved = training.max_difference(training.torch_weights(pt, weights), weights)
    apart = training.max_difference(
        training.torch_weights(pt, weights), training.keras_weights(km, weights)
    )
    assert moved > 1e-3  # training changed the weights...
    assert apart < 1e-5  # ...in the same way in both frameworks


def test_adam_places_epsilon_differently(frameworks):
    """Why the notebooks compare with SGD: Keras's Adam adds epsilon to sqrt(v) before bias
    correction, PyTorch's after it, so equal hyperparameters still give different steps (seen
    clearly with a large epsilon), while SGD agrees to float32 rounding."""
    torch, tf, keras = frameworks
    splits = cu.load_digits(seed=0)
    pt, km, weights, _ = models("mlp", frameworks)
    pt_step = training.torch_step(
        pt, torch.nn.CrossEntropyLoss(), torch.optim.Adam(pt.parameters(), lr=1e-3, eps=1e-3)
    )
    tf_step = training.tape_step(
        km,
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        keras.optimizers.Adam(learning_rate=1e-3, epsilon=1e-3),
    )
    loader = cu.data.torch_loader(splits.X_train, splits.y_train, 32, seed=0, order="numpy")
    dataset = cu.data.tf_dataset(splits.X_train, splits.y_train, 32, seed=0, order="numpy")
    with tf.device("/CPU:0"):
        for (Xp, yp), (Xt, yt) in zip(loader, dataset, strict=True):
            pt_step(Xp, yp)
            tf_step(Xt, yt)
    apart = training.max_difference(
        training.torch_weights(pt, weights), training.keras_weights(km, weights)
    )
    assert apart > 1e-3


def test_different_initial_weights_are_caught(frameworks):
    """The tolerance is tight enough to fail: another seed's weights give another first loss."""
    torch, tf, keras = frameworks
    pt, _, _, _ = models("mlp", frameworks, seed=0)
    _, km, _, _ = models("mlp", frameworks, seed=1)
    X, y = cu.load_digits(seed=0).X_test[:32], cu.load_digits(seed=0).y_test[:32]
    loss_pt = torch.nn.CrossEntropyLoss()(pt(torch.from_numpy(X)), torch.from_numpy(y)).item()
    loss_tf = float(keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, km(X)))
    assert not np.isclose(loss_pt, loss_tf, rtol=LOSS_RTOL)


def test_cnn_outputs_match_after_layout_conversion(frameworks):
    torch, _, _ = frameworks
    pt, km, _, (to_pt, to_tf) = models("cnn", frameworks)
    X = cu.load_digits(seed=0).X_test[:16]
    with torch.no_grad():
        out_pt = pt(torch.from_numpy(to_pt(X))).numpy()
    np.testing.assert_allclose(out_pt, km(to_tf(X)).numpy(), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- layout helpers


def test_layout_converters_round_trip():
    rng = np.random.default_rng(0)
    kernel = rng.standard_normal((3, 3, 2, 5))
    assert training.oihw_from_hwio(kernel).shape == (5, 2, 3, 3)
    assert np.array_equal(training.hwio_from_oihw(training.oihw_from_hwio(kernel)), kernel)
    dense = rng.standard_normal((6, 4))
    assert np.array_equal(training.linear_from_dense(dense), dense.T)
    assert np.array_equal(training.dense_from_linear(training.linear_from_dense(dense)), dense)


def test_flatten_reorder_matches_channels_first_flatten():
    rng = np.random.default_rng(1)
    h, w, c = 2, 3, 4
    fmap = rng.standard_normal((h, w, c))  # one example's feature map, channels last
    kernel = rng.standard_normal((h * w * c, 5))
    keras_out = fmap.reshape(-1) @ kernel  # Keras flattens (H, W, C)
    torch_out = fmap.transpose(2, 0, 1).reshape(-1) @ training.chw_rows_from_hwc(kernel, (h, w, c))
    np.testing.assert_allclose(torch_out, keras_out)


def test_init_weights_is_seeded_and_glorot():
    a, b = training.init_weights(training.MLP_SPEC, 0), training.init_weights(training.MLP_SPEC, 0)
    assert training.max_difference(a, b) == 0
    assert training.max_difference(a, training.init_weights(training.MLP_SPEC, 1)) > 0
    limit = np.sqrt(6 / (64 + 64))
    assert a[0].kernel.dtype == np.float32 and np.abs(a[0].kernel).max() <= limit
    assert not np.any(a[0].bias)


def test_load_rejects_a_mismatched_model(frameworks):
    torch, _, _ = frameworks
    with pytest.raises(ValueError, match="modules"):
        training.load_torch(torch.nn.Linear(64, 10), training.init_weights(training.MLP_SPEC, 0))


def test_logdir_layout_counts_event_files(tmp_path):
    for folder in ("mlp", "fit/train", "fit/train"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    (tmp_path / "mlp" / "events.out.tfevents.1.host").write_text("")
    (tmp_path / "fit" / "train" / "events.out.tfevents.1.host").write_text("")
    (tmp_path / "fit" / "train" / "events.out.tfevents.2.host").write_text("")
    (tmp_path / "mlp" / "notes.txt").write_text("")
    assert training.logdir_layout(tmp_path) == {"fit/train": 2, "mlp": 1}


def test_run_epochs_records_every_step():
    batches = [(np.zeros(2), np.zeros(2))] * 3
    losses = iter(range(100))
    history = training.run_epochs(
        lambda X, y: next(losses), batches, 2, evaluate=lambda: 0.5, progress=False
    )
    assert history.step_loss == [0, 1, 2, 3, 4, 5]
    assert history.epoch_loss == [1.0, 4.0]
    assert history.epoch_eval == [0.5, 0.5]


def test_memory_probe_runs_in_a_fresh_process():
    pytest.importorskip("torch")
    probe = training.probe_training_memory("torch", epochs=1)
    assert probe["framework"] == "torch"
    assert probe["runtime_rss"] > 10 and probe["train_rss_delta"] >= 0
    assert probe["train_peak_rss"] >= probe["runtime_rss"] - 1


# ---------------------------------------------------------------- the exercises' checkers


def _stub(*args):
    raise NotImplementedError("Exercise: write your code here")


def torch_step_right(model, optimizer, loss_fn, X, y):
    optimizer.zero_grad()
    loss = loss_fn(model(X), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def torch_step_no_zero_grad(model, optimizer, loss_fn, X, y):
    loss = loss_fn(model(X), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def tf_step_right(model, optimizer, loss_fn, X, y):
    import tensorflow as tf

    with tf.GradientTape() as tape:
        loss = loss_fn(y, model(X, training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
    return float(loss)


def tf_step_no_apply(model, optimizer, loss_fn, X, y):
    import tensorflow as tf

    with tf.GradientTape() as tape:
        loss = loss_fn(y, model(X, training=True))
    tape.gradient(loss, model.trainable_variables)
    return float(loss)


def tf_step_outside_tape(model, optimizer, loss_fn, X, y):
    import tensorflow as tf

    logits = model(X, training=True)
    with tf.GradientTape() as tape:
        loss = loss_fn(y, logits)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
    return float(loss)


def torch_accuracy(model, X, y):
    import torch

    with torch.no_grad():
        return (model(X).argmax(1) == y).float().mean().item()


def torch_accuracy_count(model, X, y):
    import torch

    with torch.no_grad():
        return float((model(X).argmax(1) == y).sum().item())


def tf_accuracy(model, X, y):
    import tensorflow as tf

    return float(tf.reduce_mean(tf.cast(tf.argmax(model(X), 1) == y, tf.float32)))


def tf_accuracy_wrong_axis(model, X, y):
    import tensorflow as tf

    predicted = tf.argmax(model(X), 0)  # argmax over the examples instead of the classes
    return float(
        tf.reduce_mean(
            tf.cast(predicted == tf.cast(y[: len(predicted)], predicted.dtype), tf.float32)
        )
    )


CASES = [
    ("05_training.pytorch.train_step", torch_step_right, torch_step_no_zero_grad, "zero_grad"),
    ("05_training.tensorflow.train_step", tf_step_right, tf_step_no_apply, "apply_gradients"),
    ("05_training.tensorflow.train_step", tf_step_right, tf_step_outside_tape, "tape"),
    ("05_training.pytorch.linear_weight", lambda k: k.T, lambda k: k, "Transpose"),
    (
        "05_training.pytorch.linear_weight",
        lambda k: k.T,
        lambda k: k.reshape(k.shape[1], k.shape[0]),
        "Transpose",
    ),
    ("05_training.tensorflow.dense_kernel", lambda w: w.T, lambda w: w, "Transpose"),
    ("05_training.pytorch.accuracy", torch_accuracy, torch_accuracy_count, "Divide"),
    ("05_training.tensorflow.accuracy", tf_accuracy, tf_accuracy_wrong_axis, "argmax"),
]


@pytest.mark.parametrize(("exercise_id", "right", "wrong", "hint_word"), CASES)
def test_checkers(frameworks, exercise_id, right, wrong, hint_word):
    passed = check(exercise_id, right)
    assert passed.status == "passed", passed.text()
    assert check(exercise_id, _stub).status == "not solved"
    failed = check(exercise_id, wrong)
    assert failed.status == "wrong", failed.text()
    assert hint_word in failed.text()
