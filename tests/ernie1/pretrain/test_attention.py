"""`--attention_impl sdpa` against paddlenlp's own attention: same outputs, gradients, keys, checkpoints, exports."""

from __future__ import annotations

import os

import numpy as np
import paddle
import pytest
from paddlenlp.transformers import (
    ErnieConfig,
    ErnieForMaskedLM,
    ErnieForPretraining,
    ErnieForQuestionAnswering,
    ErnieForSequenceClassification,
    ErnieForTokenClassification,
    ErnieModel,
)

from ernie1.common.errors import ToolkitError
from ernie1.pretrain.attention import (
    SdpaMultiHeadAttention,
    get_attention_impl,
    packed_attention_mask,
    packed_position_ids,
    resolve_attention_impl,
    set_attention_impl,
    validate_attention_impl,
)

VOCAB, SEQ = 64, 16
TOL = dict(rtol=1e-5, atol=1e-5)
GRAD_TOL = dict(rtol=1e-5, atol=1e-6)


def tiny_config(**overrides) -> ErnieConfig:
    values = dict(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=2 * SEQ,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        num_labels=3,
    )
    values.update(overrides)
    return ErnieConfig(**values)


def build(model_cls, impl: str, config: ErnieConfig = None, state=None):
    """A model built in a fresh unique-name scope (stable parameter names), optionally loaded, switched to `impl`."""
    paddle.seed(11)
    with paddle.utils.unique_name.guard():
        model = model_cls(config or tiny_config())
    if state is not None:
        model.set_state_dict(state)
    set_attention_impl(model, impl)
    return model


def padded_batch(seed: int = 0, batch: int = 3):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, VOCAB, (batch, SEQ)).astype("int64")
    lengths = [SEQ, SEQ - 5, 4][:batch]
    for row, length in enumerate(lengths):
        ids[row, length:] = 0
    return ids


def masks(ids: np.ndarray):
    """Every mask form the encoder sees: the collate's, the tokenizer's 2-D, none, a full 4-D one, a bool one."""
    pad = (ids == 0)[:, None, None, :]
    rng = np.random.default_rng(5)
    full = np.where(rng.random((ids.shape[0], 1, SEQ, SEQ)) < 0.3, -1e4, 0.0).astype("float32")
    full[..., 0] = 0.0  # every query keeps one key
    return {
        "collate_b11s": paddle.to_tensor(np.where(pad, -1e4, 0.0).astype("float32")),
        "tokenizer_2d": paddle.to_tensor((ids != 0).astype("int64")),
        "none": None,
        "full_b1ss": paddle.to_tensor(full),
        "bool_b11s": paddle.to_tensor(~pad),
    }


def forward_backward(model, ids: np.ndarray, mask):
    sequence, pooled = model(paddle.to_tensor(ids), attention_mask=mask)
    loss = (sequence * sequence).mean() + pooled.sum()
    loss.backward()
    grads = {name: param.grad.numpy().copy() for name, param in model.named_parameters() if param.grad is not None}
    model.clear_gradients()
    return sequence.numpy(), pooled.numpy(), grads


@pytest.mark.parametrize("mask_kind", ["collate_b11s", "tokenizer_2d", "none", "full_b1ss", "bool_b11s"])
def test_outputs_and_gradients_match_paddlenlp(mask_kind):
    reference = build(ErnieModel, "paddle")
    fused = build(ErnieModel, "sdpa", state=reference.state_dict())
    assert get_attention_impl(reference) == "paddle" and get_attention_impl(fused) == "sdpa"
    reference.train(), fused.train()  # dropout 0: train mode must not change anything either
    ids = padded_batch()
    mask = masks(ids)[mask_kind]
    seq_ref, pooled_ref, grads_ref = forward_backward(reference, ids, mask)
    seq, pooled, grads = forward_backward(fused, ids, mask)
    np.testing.assert_allclose(seq, seq_ref, **TOL)
    np.testing.assert_allclose(pooled, pooled_ref, **TOL)
    assert sorted(grads) == sorted(grads_ref) and len(grads) == len(list(reference.parameters()))
    for name in grads_ref:
        np.testing.assert_allclose(grads[name], grads_ref[name], err_msg=name, **GRAD_TOL)


def test_gpu_mask_broadcast_keeps_semantics(monkeypatch):
    """The GPU-only mask preparation ([B,1,1,S] -> [B,1,S,S]), exercised on CPU: same outputs, also under to_static."""
    from ernie1.pretrain import attention

    monkeypatch.setattr(attention, "_on_cpu", lambda tensor: False)
    ids = padded_batch()
    mask = masks(ids)["collate_b11s"]
    query = paddle.zeros([3, SEQ, 4, 8])
    assert attention._prepare_mask(mask, query).shape == [3, 1, SEQ, SEQ]
    assert attention._prepare_mask(mask[:1], query).shape == [3, 1, SEQ, SEQ]
    reference = build(ErnieModel, "paddle")
    fused = build(ErnieModel, "sdpa", state=reference.state_dict())
    seq_ref, _, grads_ref = forward_backward(reference, ids, mask)
    seq, _, grads = forward_backward(fused, ids, mask)
    np.testing.assert_allclose(seq, seq_ref, **TOL)
    for name in grads_ref:
        np.testing.assert_allclose(grads[name], grads_ref[name], err_msg=name, **GRAD_TOL)
    fused.eval(), reference.eval()
    spec = [
        paddle.static.InputSpec([None, None], "int64", "input_ids"),
        paddle.static.InputSpec([None, None], "int64", "token_type_ids"),
        None,
        paddle.static.InputSpec([None, 1, 1, None], "float32", "attention_mask"),
    ]
    static_fn = paddle.jit.to_static(fused, input_spec=spec, full_graph=True)
    token_types = paddle.zeros_like(paddle.to_tensor(ids))
    got = static_fn(paddle.to_tensor(ids), token_types, None, mask)[0].numpy()
    np.testing.assert_allclose(got, reference(paddle.to_tensor(ids), attention_mask=mask)[0].numpy(), **TOL)


def test_eval_mode_and_attention_dropout_match_on_cpu():
    """With attention dropout on, CPU sdpa (math backend) draws the same dropout as paddle under the same seed."""
    config = tiny_config(attention_probs_dropout_prob=0.3, hidden_dropout_prob=0.1)
    reference = build(ErnieModel, "paddle", config)
    fused = build(ErnieModel, "sdpa", config, state=reference.state_dict())
    ids = padded_batch(1)
    mask = masks(ids)["collate_b11s"]
    for mode in ("train", "eval"):
        getattr(reference, mode)(), getattr(fused, mode)()
        paddle.seed(3)
        expected = reference(paddle.to_tensor(ids), attention_mask=mask)[0].numpy()
        paddle.seed(3)
        got = fused(paddle.to_tensor(ids), attention_mask=mask)[0].numpy()
        np.testing.assert_allclose(got, expected, err_msg=mode, **TOL)


@pytest.mark.parametrize(
    "model_cls",
    [
        ErnieModel,
        ErnieForPretraining,
        ErnieForMaskedLM,
        ErnieForSequenceClassification,
        ErnieForTokenClassification,
        ErnieForQuestionAnswering,
    ],
)
def test_state_dict_keys_and_parameters_unchanged(model_cls):
    plain = build(model_cls, "paddle")
    keys = list(plain.state_dict())
    names = [param.name for param in plain.parameters()]
    set_attention_impl(plain, "sdpa")
    assert list(plain.state_dict()) == keys  # same keys, same order
    assert [param.name for param in plain.parameters()] == names  # same parameter objects (optimizer state)
    attn = (plain if isinstance(plain, ErnieModel) else plain.ernie).encoder.layers[0].self_attn
    assert isinstance(attn, SdpaMultiHeadAttention) and isinstance(attn, paddle.nn.MultiHeadAttention)
    assert list(build(model_cls, "sdpa").state_dict()) == keys  # a fresh sdpa model too
    set_attention_impl(plain, "paddle")
    assert type(attn) is SdpaMultiHeadAttention
    back = (plain if isinstance(plain, ErnieModel) else plain.ernie).encoder.layers[0].self_attn
    assert type(back) is paddle.nn.MultiHeadAttention  # exactly paddlenlp's layer again
    assert list(plain.state_dict()) == keys


def test_output_attentions_falls_back_to_paddle_path():
    reference = build(ErnieModel, "paddle")
    fused = build(ErnieModel, "sdpa", state=reference.state_dict())
    ids = paddle.to_tensor(padded_batch())
    expected = reference(ids, output_attentions=True, return_dict=True)
    got = fused(ids, output_attentions=True, return_dict=True)
    np.testing.assert_allclose(got.last_hidden_state.numpy(), expected.last_hidden_state.numpy(), **TOL)
    np.testing.assert_allclose(got.attentions[-1].numpy(), expected.attentions[-1].numpy(), **TOL)


def test_recompute_with_sdpa_gives_the_same_gradients():
    reference = build(ErnieModel, "paddle")
    fused = build(ErnieModel, "sdpa", state=reference.state_dict())
    fused.encoder.enable_recompute = True
    ids = padded_batch()
    mask = masks(ids)["collate_b11s"]
    _, _, grads_ref = forward_backward(reference, ids, mask)
    _, _, grads = forward_backward(fused, ids, mask)
    for name in grads_ref:
        np.testing.assert_allclose(grads[name], grads_ref[name], err_msg=name, **GRAD_TOL)


def pretraining_batch(seed: int):
    ids = padded_batch(seed, batch=2)
    rng = np.random.default_rng(seed)
    positions = np.sort(rng.choice(np.flatnonzero(ids.reshape(-1)), 6, replace=False)).astype("int64")
    return {
        "input_ids": paddle.to_tensor(ids),
        "attention_mask": paddle.to_tensor(np.where(ids == 0, -1e4, 0.0).astype("float32")[:, None, None, :]),
        "masked_positions": paddle.to_tensor(positions),
        "labels": paddle.to_tensor(ids.reshape(-1)[positions][:, None]),
        "sop": paddle.to_tensor(rng.integers(0, 2, (2, 1)).astype("int64")),
    }


def train_steps(model, optimizer, seeds):
    losses = []
    model.train()
    for seed in seeds:
        batch = pretraining_batch(seed)
        scores, sop = model(
            batch["input_ids"], attention_mask=batch["attention_mask"], masked_positions=batch["masked_positions"]
        )
        loss = paddle.nn.functional.cross_entropy(scores, batch["labels"]) + paddle.nn.functional.cross_entropy(
            sop, batch["sop"]
        )
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        losses.append(float(loss))
    return losses


def make_optimizer(model):
    return paddle.optimizer.AdamW(learning_rate=5e-3, parameters=model.parameters(), weight_decay=0.01)


@pytest.mark.parametrize("first,second", [("paddle", "sdpa"), ("sdpa", "paddle")])
def test_checkpoint_trained_with_one_impl_continues_with_the_other(tmp_path, first, second):
    with paddle.utils.unique_name.guard():
        model = build(ErnieForPretraining, first)
        optimizer = make_optimizer(model)
        train_steps(model, optimizer, [0, 1, 2])
        paddle.save(model.state_dict(), str(tmp_path / "model_state.pdparams"))
        paddle.save(optimizer.state_dict(), str(tmp_path / "model_state.pdopt"))
        continued_same = train_steps(model, optimizer, [3, 4])
    with paddle.utils.unique_name.guard():
        resumed = build(ErnieForPretraining, second)
        resumed_optimizer = make_optimizer(resumed)
        state = paddle.load(str(tmp_path / "model_state.pdparams"))
        assert sorted(state) == sorted(resumed.state_dict())
        resumed.set_state_dict(state)
        resumed_optimizer.set_state_dict(paddle.load(str(tmp_path / "model_state.pdopt")))
        continued_other = train_steps(resumed, resumed_optimizer, [3, 4])
    np.testing.assert_allclose(continued_other, continued_same, **TOL)


def test_to_static_export_predictor_matches_dygraph(tmp_path):
    from paddle import inference

    reference = build(ErnieForSequenceClassification, "paddle")
    reference.eval()
    fused = build(ErnieForSequenceClassification, "sdpa", state=reference.state_dict())
    fused.eval()
    ids = padded_batch(2)
    token_types = np.zeros_like(ids)
    expected = reference(paddle.to_tensor(ids), paddle.to_tensor(token_types)).numpy()
    spec = [
        paddle.static.InputSpec([None, None], "int64", "input_ids"),
        paddle.static.InputSpec([None, None], "int64", "token_type_ids"),
    ]
    static_fn = paddle.jit.to_static(fused, input_spec=spec, full_graph=True)
    np.testing.assert_allclose(
        static_fn(paddle.to_tensor(ids), paddle.to_tensor(token_types)).numpy(), expected, **TOL
    )
    prefix = str(tmp_path / "inference")
    paddle.jit.save(fused, prefix, input_spec=spec)
    program = prefix + (".json" if os.path.exists(prefix + ".json") else ".pdmodel")
    config = inference.Config(program, prefix + ".pdiparams")
    config.disable_gpu()
    config.switch_use_feed_fetch_ops(False)
    config.disable_glog_info()
    predictor = inference.create_predictor(config)
    for name, array in zip(predictor.get_input_names(), (ids, token_types)):
        predictor.get_input_handle(name).copy_from_cpu(array)
    predictor.run()
    got = predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()
    np.testing.assert_allclose(got, expected, **TOL)


def test_static_pretraining_program_matches_paddle(monkeypatch):
    """The toolkit's PIR static-graph pretraining step: same losses with either implementation."""
    import ernie1.pretrain.engines.static_program as static_graph
    from ernie1.pretrain.config import ModelConfig, OptimConfig, PretrainConfig, RuntimeConfig, ScheduleConfig

    original = static_graph.build_pretraining_model
    ernie_config = tiny_config(max_position_embeddings=SEQ)
    config = PretrainConfig(
        model=ModelConfig(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0),
        optim=OptimConfig(max_lr=1e-2, min_lr=1e-3, warmup_steps=1, decay_steps=4, weight_decay=0.01, grad_clip=0.5),
        schedule=ScheduleConfig(global_batch_size=2, micro_batch_size=2, accumulate_steps=1),
        runtime=RuntimeConfig(device="cpu"),
    )

    def batch(seed):
        rng = np.random.RandomState(seed)
        ids = rng.randint(1, VOCAB, (2, SEQ)).astype("int64")
        ids[1, -5:] = 0
        positions = np.array([1, 3, 5, 8, 17, 19, 21, 22], dtype="int32")
        labels = ids.reshape(-1)[positions].reshape(-1, 1).copy()
        labels[-2:] = -1
        return {
            "input_ids": ids,
            "token_type_ids": np.zeros_like(ids),
            "attention_mask": np.where(ids == 0, -1e4, 0.0).astype("float32")[:, None, None, :],
            "masked_positions": positions,
            "masked_lm_labels": labels,
            "next_sentence_labels": rng.randint(0, 2, (2, 1)).astype("int64"),
        }

    def run(impl):
        def build_with_impl(*args, **kwargs):
            model = original(*args, **kwargs)
            set_attention_impl(model, impl)
            return model

        monkeypatch.setattr(static_graph, "build_pretraining_model", build_with_impl)
        paddle.enable_static()
        try:
            scope = paddle.static.Scope()
            with paddle.static.scope_guard(scope):
                programs = static_graph.build_static_programs(config, ernie_config)
                exe = static_graph.create_executor("cpu")
                static_graph.initialize_parameters(exe, programs, seed=3, rank=0)
                losses = [static_graph.train_step(exe, programs, [batch(seed)])["loss"] for seed in range(3)]
                losses.append(static_graph.eval_step(exe, programs, batch(9))["loss"])
                return losses, dict(programs.name_map)
        finally:
            paddle.disable_static()

    paddle_losses, paddle_names = run("paddle")
    sdpa_losses, sdpa_names = run("sdpa")
    assert sdpa_names == paddle_names  # static parameter names (checkpoint name map) unchanged
    np.testing.assert_allclose(sdpa_losses, paddle_losses, **TOL)


def test_packed_rows_match_separate_sequences():
    """Two sequences packed in one row (block-diagonal mask, restarting positions) == each run on its own."""
    reference = build(ErnieModel, "paddle")
    fused = build(ErnieModel, "sdpa", state=reference.state_dict())
    fused.eval(), reference.eval()
    rng = np.random.default_rng(7)
    first, second = rng.integers(1, VOCAB, 6), rng.integers(1, VOCAB, 7)
    packed = np.zeros((1, SEQ), "int64")
    packed[0, :6], packed[0, 6:13] = first, second
    segments = np.zeros((1, SEQ), "int64")
    segments[0, :6], segments[0, 6:13] = 1, 2
    mask = packed_attention_mask(segments)
    positions = packed_position_ids(segments)
    assert mask.shape == (1, 1, SEQ, SEQ) and positions[0, :14].tolist() == list(range(6)) + list(range(7)) + [0]
    for model in (fused, reference):
        out = model(
            paddle.to_tensor(packed), position_ids=paddle.to_tensor(positions), attention_mask=paddle.to_tensor(mask)
        )[0].numpy()
        for tokens, start in ((first, 0), (second, 6)):
            alone = model(paddle.to_tensor(tokens[None, :].astype("int64")))[0].numpy()
            np.testing.assert_allclose(out[0, start : start + len(tokens)], alone[0], **TOL)


def test_bad_value_is_a_one_line_toolkit_error():
    for bad in ("flash", "SDPA2", 3):
        with pytest.raises(ToolkitError, match="^attention_impl: ") as error:
            validate_attention_impl(bad)
        assert "\n" not in str(error.value) and "paddle" in str(error.value) and "sdpa" in str(error.value)
    with pytest.raises(ToolkitError, match="attention_impl"):
        set_attention_impl(build(ErnieModel, "paddle"), "fused")
    with pytest.raises(TypeError):
        set_attention_impl(paddle.nn.Linear(2, 2), "sdpa")


def test_resolve_defaults():
    assert resolve_attention_impl("paddle", "gpu") == "paddle"
    assert resolve_attention_impl(" SDPA ", "cpu") == "sdpa"
    assert resolve_attention_impl(None, "gpu:0") == "sdpa"
    assert resolve_attention_impl("auto", "gpu") == "sdpa"
    assert resolve_attention_impl("", "cpu") in ("paddle", "sdpa")
    assert resolve_attention_impl(None, "xpu:0") == "paddle"  # unmeasured devices keep paddlenlp's path
    assert resolve_attention_impl(None, "gpu", for_export=True) == "paddle"
    assert resolve_attention_impl("sdpa", "gpu", for_export=True) == "sdpa"


@pytest.mark.gpu
@pytest.mark.skipif(not paddle.is_compiled_with_cuda() or paddle.device.cuda.device_count() == 0, reason="needs a GPU")
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("mask_kind", ["collate_b11s", "full_b1ss"])
def test_gpu_backends_match_paddle(dtype, mask_kind):
    """GPU: fp32 -> memory-efficient attention, fp16/bf16 -> flash attention; both against the paddle math path."""
    paddle.set_device("gpu")
    try:
        reference = build(ErnieModel, "paddle", tiny_config(hidden_size=64, num_attention_heads=2))
        fused = build(ErnieModel, "sdpa", tiny_config(hidden_size=64, num_attention_heads=2), reference.state_dict())
        ids = padded_batch()
        mask = masks(ids)[mask_kind]
        results = []
        for model in (reference, fused):
            with paddle.amp.auto_cast(enable=dtype != "float32", dtype=dtype if dtype != "float32" else "float16"):
                results.append(forward_backward(model, ids, mask))
        # fp32 on GPU: cuBLAS may use TF32 for the projections (Paddle's default on Ampere+), hence not 1e-5.
        out_tol = dict(rtol=2e-3, atol=2e-3) if dtype == "float32" else dict(rtol=2e-2, atol=2e-2)
        grad_tol = dict(rtol=5e-3, atol=5e-3) if dtype == "float32" else dict(rtol=5e-2, atol=5e-2)
        np.testing.assert_allclose(results[1][0].astype("float32"), results[0][0].astype("float32"), **out_tol)
        for name, grad in results[0][2].items():
            np.testing.assert_allclose(results[1][2][name], grad, err_msg=name, **grad_tol)
    finally:
        paddle.set_device("cpu")
