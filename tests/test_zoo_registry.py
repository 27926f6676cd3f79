"""Every registered zoo model: reference parameter counts, and training on pipeline shards."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from zoo.data import ShardDataset
from zoo.registry import MODELS, count_parameters
from zoo.tasks import Task
from zoo.train import TARGET_OF_TASK, main

# registry name -> key of shared/reference/param_counts.json (reference setup of each entry)
REFERENCE_KEYS = {
    "accm": "FER_BGER/ACCM proposed(56, 8)",
    "accm-cnn": "FER_BGER/CNN baseline CNN(56, 8)",
    "sistcm": "FER_BGER/SISTCM resnet18 + TLSTM",
    "resnet18-tlstm": "FER_BGER/ResNet18 + TLSTM baseline",
    "vsgcnn": "proxemo/VS-GCNN",
    "tsn-resnet50": "EmoReact/TSN resnet50",
    "tsm-resnet50": "EmoReact/TSN resnet50 + TSM",
    "tsn-mobilenetv2": "EmoReact/TSN mobilenet_v2",
    "tsn-resnet50-fusion": "EmoReact/TSN resnet50",  # one network shared by the body and face streams
    "vtt-resnet18-tsm": "VTT/ResNet18-TSM (causal shift)",
    "caer-bilstm-h128-l1": "CAER/train_architectures BiLSTM_h128_l1",
    "caer-bilstm-h256-l2": "CAER/train_architectures BiLSTM_h256_l2",
    "caer-tcn-bilstm": "CAER/train_architectures TCN_BiLSTM",
    "caer-transformer-h128": "CAER/train_architectures Transformer_h128",
    "caer-gru-h128-l2": "CAER/train_architectures GRU_h128_l2",
    "caer-conv1d": "CAER/train_architectures Conv1D",
    "caer-multiscale": "CAER/train_architectures MultiScale",
    "caer-convlstm": "CAER/train_architectures ConvLSTM",
    "caer-deepresidual": "CAER/train_architectures DeepResidual",
    "caer-graphskeleton": "CAER/train_architectures GraphSkeleton",
    "caer-deepresidualpreact": "CAER/train_best_model DeepResidualPreact",
}


#: Models the reference repo builds but param_counts.json does not list: the torchvision network
#: whose count they must equal (VTT resnet_tsm.py resnet34 / resnet50 with the seed's 7-class fc).
TORCHVISION_COUNTS = {"vtt-resnet34-tsm": "resnet34", "vtt-resnet50-tsm": "resnet50"}


def test_every_model_has_a_reference_count():
    assert set(REFERENCE_KEYS) | set(TORCHVISION_COUNTS) == set(MODELS)
    assert not set(REFERENCE_KEYS) & set(TORCHVISION_COUNTS)


@pytest.mark.parametrize("name", sorted(TORCHVISION_COUNTS))
def test_parameter_count_equals_torchvision_with_the_seed_head(name):
    import torchvision

    m = MODELS[name]
    classes = Task(m.task).outputs(m.example_classes)
    expected = count_parameters(getattr(torchvision.models, TORCHVISION_COUNTS[name])(num_classes=classes))
    assert count_parameters(m.build(m.example_shape, classes)) == expected


def test_recipes_name_the_caer_architectures_in_reference_order():
    """The torch-free table (zoo.recipes) and the builders (zoo.models.caer) list the same models."""
    from zoo.models.caer import CAER_ARCHITECTURES
    from zoo.recipes import CAER_ARCHITECTURE_NAMES

    assert tuple(CAER_ARCHITECTURES) == CAER_ARCHITECTURE_NAMES


def test_model_list_runs_without_torch():
    """``python -m zoo.train --list`` reads the table without importing torch (start-up: bench.cli_startup),
    and prints every trainable and pretrained model with its exact parameter count."""
    import subprocess
    import sys

    code = ("import runpy, sys; sys.argv = ['zoo.train', '--list']\n"
            "try:\n    runpy.run_module('zoo.train', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print('TORCH', 'torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip().endswith("TORCH False")
    assert "sistcm" in proc.stdout and "22,044,885" in proc.stdout and "mini-xception-fer2013" in proc.stdout
    assert "seed_spec" not in proc.stdout


@pytest.mark.parametrize("name", sorted(REFERENCE_KEYS))
def test_parameter_count_equals_reference(name, shared):
    ref = json.loads((shared / "reference" / "param_counts.json").read_text())["models"][REFERENCE_KEYS[name]]
    m = MODELS[name]
    model = m.build(m.example_shape, Task(m.task).outputs(m.example_classes))
    assert count_parameters(model) == ref["parameters"]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_registered_parameter_count_equals_the_built_model(name):
    """Each model's registration states its parameter count (``zoo.train --list`` prints it
    without building the network): it must be the built model's."""
    m = MODELS[name]
    model = m.build(m.example_shape, Task(m.task).outputs(m.example_classes))
    assert m.params == count_parameters(model) > 0


def test_list_cards_read_from_source_equal_the_registered_models():
    """``zoo.train --list`` reads each register_model call from the source (no torch): the same
    names in the same order with the same group, field, task, params and source as the imports."""
    from zoo.registry import model_cards

    cards = model_cards()
    assert [c.name for c in cards] == list(MODELS)
    for c in cards:
        m = MODELS[c.name]
        assert (c.group, c.field, c.task, c.params, c.source) == (m.group, m.field, m.task, m.params, m.source)
        assert m.build.__module__.startswith("zoo.models.")  # registered in the model's own file


def test_registration_needs_literal_card_fields(tmp_path, monkeypatch):
    """A register_model call whose card fields are not literals is named with file and line."""
    import sys

    from zoo import registry

    (tmp_path / "zoo_fake_model.py").write_text(
        "from zoo.registry import register_model\nNAME = 'x'\n"
        "register_model(NAME, group='videos', field='timeline', source='s', params=1)(print)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "MODEL_MODULES", ("zoo_fake_model",))
    with pytest.raises(ValueError, match=r"zoo_fake_model\.py:3: register_model needs its name"):
        registry.model_cards()
    sys.modules.pop("zoo_fake_model", None)


FACE_MODELS = ["sistcm", "resnet18-tlstm", "tsn-mobilenetv2", "tsm-resnet50", "tsn-resnet50-fusion",
               "vtt-resnet18-tsm"]


@pytest.mark.parametrize("name", FACE_MODELS)
def test_face_model_forward_backward_on_shards(name, extracted):
    spec = MODELS[name]
    data = ShardDataset(extracted["out"], spec.field, "train", spec.group, spec.stack_clips,
                        TARGET_OF_TASK[spec.task])
    xs, ys = zip(*(data[i] for i in range(2)))
    x, y = torch.stack(xs), (torch.stack(ys) if spec.task == "multilabel" else torch.tensor(ys))
    task = Task(spec.task)
    model = spec.build(tuple(x.shape[1:]), task.outputs(len(data.label_names)))
    out = model(spec.prepare(x))
    logits = spec.logits(out) if spec.logits else out
    assert logits.shape == (2, len(data.label_names))
    loss = spec.loss(out, y) if spec.loss else task.loss(logits, y)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", ["tsn-mobilenetv2", "vtt-resnet18-tsm"])
def test_face_models_learn_the_sample_shards(name, extracted, tmp_path):
    out = tmp_path / name
    code = main([name, "--shards", str(extracted["out"]), "--epochs", "4", "--batch-size", "3", "--lr", "0.01",
                 "--out", str(out), "--no-progress", "--no-tensorboard"])
    assert code == 0
    rows = [r.split(",") for r in (out / "history.csv").read_text().splitlines()[1:]]
    assert float(rows[-1][1]) < float(rows[0][1])
    metrics = json.loads((out / "metrics.json").read_text())
    key = "roc_auc_micro" if MODELS[name].task == "multilabel" else "accuracy"
    assert metrics[key] is not None


@pytest.mark.parametrize("name", ["accm", "caer-deepresidual"])
def test_body_models_beat_chance_on_the_sample_content_labels(name, extracted, tmp_path):
    """The sample's scene labels are learnable from body keypoints: 3 classes, chance 1/3."""
    out = tmp_path / name
    assert main([name, "--shards", str(extracted["out"]), "--epochs", "15", "--out", str(out), "--no-progress",
                 "--no-tensorboard"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["accuracy"] > 1 / 3 + 0.1 and metrics["eval_rows"] == 3


CAER_MODELS = sorted(n for n in MODELS if n.startswith("caer-"))


def test_caer_models_learn_pose_features_from_shards(extracted):
    """Every CAER architecture: forward/backward on pipeline pose features, loss falls in a few steps."""
    data = ShardDataset(extracted["out"], "pose_features", "train")
    x, y = data.tensors()
    y = torch.tensor(y)
    assert x.shape == (3, 64, 238) and (x != 0).any()
    for name in CAER_MODELS:
        torch.manual_seed(0)
        spec = MODELS[name]
        model = spec.build(tuple(x.shape[1:]), len(data.label_names))
        opt = torch.optim.AdamW(model.parameters(), 1e-3)
        losses = []
        for _ in range(6):
            logits = model(x)
            assert logits.shape == (3, 3), name
            loss = torch.nn.functional.cross_entropy(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert losses[-1] < losses[0], (name, losses)


def test_fullbody_clip_crops_train_tsn(extracted, tmp_path):
    """The TSN ``fullbody`` input: full-body clip crops stored by the pipeline, via --input."""
    import h5py

    with h5py.File(sorted(extracted["out"].glob("shard-*.h5"))[0], "r") as f:
        bodies, boxes, faces = f["clips/fullbody"][()], f["clips/body_boxes"][()], f["clips/faces"][()]
        blacked, face_boxes = f["clips/body"][()], f["clips/face_boxes"][()]
    # the TSN body input: the same crops with the face region blacked out where there is one; a
    # frame where the main person has no pose has no body crop (zeros, NaN box: schema 4), even
    # when the face tracker found their face there
    has_body = np.isfinite(boxes).all(-1)
    has_face = np.isfinite(face_boxes).all(-1) & has_body
    differs = (blacked != bodies).any(axis=(2, 3, 4))
    assert has_face.any() and (blacked <= bodies).all() and differs[has_face].all() and not differs[~has_face].any()
    assert not bodies[~has_body].any()
    assert bodies.shape == faces.shape and bodies.dtype == np.uint8
    assert has_body.mean() > 0.5 and (boxes[has_body][:, 2] > boxes[has_body][:, 0]).all()
    side = boxes[has_body]
    assert np.abs(side[:, 2] - side[:, 0] - (side[:, 3] - side[:, 1])).max() < 1e-3  # square
    assert not np.array_equal(bodies, faces) and bodies.mean() > 10
    out = tmp_path / "tsn-body"
    assert main(["tsn-mobilenetv2", "--input", "fullbody", "--shards", str(extracted["out"]), "--epochs", "1",
                 "--batch-size", "3", "--out", str(out), "--no-progress", "--no-tensorboard"]) == 0
    ckpt = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert ckpt["config"]["input"] == "clips/fullbody"


def test_resolve_finds_trainable_and_pretrained_models():
    from zoo.registry import PRETRAINED, UnknownModelError, model_names, resolve

    assert resolve("accm") is MODELS["accm"] and resolve("vtt-resnet34-tsm").params == 21_288_263
    assert resolve("mini-xception-fer2013") is PRETRAINED["mini-xception-fer2013"]
    assert model_names()[: len(MODELS)] == tuple(MODELS)
    with pytest.raises(UnknownModelError, match="did you mean 'mini-xception-fer2013'"):
        resolve("mini-xception-fer")


def test_models_is_one_dict_that_keeps_run_time_entries(monkeypatch):
    """MODELS is the same dict on every access, so an entry set on it (a test, a plug-in) is seen
    by get_model and zoo.train."""
    import dataclasses

    from zoo import registry

    extra = dataclasses.replace(MODELS["accm"], name="accm-extra")
    monkeypatch.setitem(registry.MODELS, "accm-extra", extra)
    assert registry.MODELS is registry.models() and registry.get_model("accm-extra") is extra
