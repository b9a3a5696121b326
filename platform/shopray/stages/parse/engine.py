"""vLLM's AsyncLLM on its own event-loop thread: starts in the background, answers with a deadline.

Why a thread of its own: engine start-up blocks for 20-90 s on CPU, and the
Serve replica must answer health checks (and serve rule-parser fallbacks)
meanwhile; and one engine then serves both asyncio callers (the Serve
deployment) and plain synchronous callers (the in-process pipeline,
benchmarks, the trainer's evaluation) without either owning the loop.

Requests are concurrent: each one is a coroutine on the engine loop, and
vLLM's scheduler batches whatever is in flight into the same decoding steps.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
import time
import uuid
from enum import Enum

from shopray.config import ParserEngineConfig

log = logging.getLogger(__name__)


class EngineState(str, Enum):
    STARTING = "starting"
    READY = "ready"
    FAILED = "failed"
    STOPPED = "stopped"


class EngineUnavailable(RuntimeError):
    """The engine is starting, failed, or stopped."""


class GenerationTimeout(TimeoutError):
    """The engine did not finish within the request's budget (the request was aborted)."""


def engine_args(model: str, config: ParserEngineConfig):
    """vLLM's AsyncEngineArgs for a model directory, from ``parser.engine``."""
    from vllm.engine.arg_utils import AsyncEngineArgs

    kwargs: dict = dict(
        model=model,
        dtype=config.dtype,
        max_model_len=config.max_model_len,
        enforce_eager=config.enforce_eager,
        max_num_seqs=config.max_num_seqs,
        gpu_memory_utilization=config.gpu_memory_utilization,
        seed=config.seed,
        # Compact JSON: whitespace would only add decoding steps.
        structured_outputs_config={"backend": "xgrammar", "disable_any_whitespace": True},
        disable_log_stats=True,
    )
    if config.prompt_lookup_tokens:
        kwargs["speculative_config"] = {"method": "ngram", "num_speculative_tokens": config.prompt_lookup_tokens, "prompt_lookup_min": 1, "prompt_lookup_max": 3}
    kwargs.update(config.extra)
    return AsyncEngineArgs(**kwargs)


class ParserEngine:
    def __init__(self, model: str, config: ParserEngineConfig):
        self.model, self.config = model, config
        self.state = EngineState.STOPPED
        self.error: str | None = None
        self.started_at: float | None = None
        self.ready_at: float | None = None
        self._engine = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    # ------------------------------------------------------------------ life cycle
    def start(self) -> None:
        """Return at once; the engine comes up on a daemon thread."""
        if self.state in (EngineState.STARTING, EngineState.READY):
            return
        # The engine-core process vLLM spawns reads its environment at start: parser.engine is the one
        # place the CPU KV cache size is set, and nothing may reach a model hub.
        os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(self.config.cpu_kv_cache_gib)
        os.environ["HF_HUB_OFFLINE"] = "1"
        self.state, self.error, self.started_at = EngineState.STARTING, None, time.time()
        self._ready.clear()
        self._thread = threading.Thread(target=self._main, name="parser-engine", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            from vllm.v1.engine.async_llm import AsyncLLM

            self._engine = AsyncLLM.from_engine_args(engine_args(self.model, self.config))
            loop.run_until_complete(self._warm_up())
        except Exception as exc:  # any start-up failure leaves the rule parser answering
            log.exception("parser engine failed to start from %s", self.model)
            self.state, self.error = EngineState.FAILED, f"{type(exc).__name__}: {exc}"
            self._ready.set()
            loop.close()
            return
        self.state, self.ready_at = EngineState.READY, time.time()
        log.info("parser engine ready in %.1f s (%s)", self.ready_at - (self.started_at or self.ready_at), self.model)
        self._ready.set()
        loop.run_forever()
        loop.close()

    # A grammar, so the warm-up takes the path a parse takes.
    _WARM_UP_SCHEMA = {"type": "object", "properties": {"a": {"enum": ["b c d", "e"]}, "f": {"type": "number"}}}
    _WARM_UP_TOKENS = 16

    async def _warm_up(self) -> None:
        """Run a few requests before READY: the first ones compile what start-up did not (vLLM's n-gram proposer
        is JIT-compiled on its first draft: a 3 s first parse on CPU, past any parse budget)."""
        # A prompt that repeats itself, so n-gram lookup finds drafts; it fits max_model_len with the answer.
        prompt = (list(range(10, 26)) * 6)[: self.config.max_model_len - self._WARM_UP_TOKENS]
        for _ in range(3):
            await self._generate(prompt, self._WARM_UP_SCHEMA, max_tokens=self._WARM_UP_TOKENS, timeout_s=300)

    def wait_ready(self, timeout: float | None = None) -> bool:
        self._ready.wait(timeout)
        return self.state is EngineState.READY

    def alive(self) -> bool:
        """READY and the engine-core process still running; a dead engine flips the state to FAILED."""
        if self.state is not EngineState.READY:
            return False
        if self._engine is not None and self._engine.errored:
            self.state, self.error = EngineState.FAILED, "engine core died"
            return False
        return True

    def shutdown(self) -> None:
        engine, loop = self._engine, self._loop
        self.state = EngineState.STOPPED

        async def stop() -> None:
            # Cancel the output handler first: otherwise it sees the engine core go
            # away and logs an EngineDeadError traceback for an orderly shutdown.
            handler = getattr(engine, "output_handler", None)
            if handler is not None:
                handler.cancel()
            engine.shutdown()

        if engine is not None:
            try:
                if loop is not None and loop.is_running():
                    asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=60)
                else:
                    engine.shutdown()
            except Exception:  # noqa: BLE001 - best effort on the way out
                log.warning("engine shutdown raised", exc_info=True)
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._engine = None

    # ------------------------------------------------------------------ generation
    async def _generate(self, prompt_ids: list[int], schema: dict, max_tokens: int, timeout_s: float) -> str:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        params = SamplingParams(temperature=0.0, max_tokens=max_tokens, structured_outputs=StructuredOutputsParams(json=schema))

        async def run() -> str:
            final = None
            async for out in self._engine.generate({"prompt_token_ids": prompt_ids}, params, request_id=uuid.uuid4().hex):
                final = out
            if final is None or not final.outputs:
                raise EngineUnavailable("engine returned no output")
            return final.outputs[0].text

        try:
            # Cancelling the generator aborts the request inside vLLM, so a timed-out
            # parse stops consuming decoding steps that other requests need.
            return await asyncio.wait_for(run(), timeout=timeout_s)
        except asyncio.TimeoutError as exc:
            raise GenerationTimeout(f"no parse within {timeout_s * 1000:.0f} ms") from exc

    def _submit(self, prompt_ids: list[int], schema: dict, max_tokens: int, timeout_s: float) -> concurrent.futures.Future:
        if not self.alive() or self._loop is None:
            raise EngineUnavailable(f"parser engine is {self.state.value}" + (f": {self.error}" if self.error else ""))
        return asyncio.run_coroutine_threadsafe(self._generate(prompt_ids, schema, max_tokens, timeout_s), self._loop)

    # A little slack over the engine-side deadline covers the hop between loops;
    # past it the engine loop itself is stuck, which also counts as a timeout.
    _SLACK_S = 0.5

    async def generate(self, prompt_ids: list[int], schema: dict, max_tokens: int, timeout_s: float) -> str:
        """From any asyncio loop: the generated text, or GenerationTimeout / EngineUnavailable."""
        future = self._submit(prompt_ids, schema, max_tokens, timeout_s)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout=timeout_s + self._SLACK_S)
        except asyncio.TimeoutError as exc:
            future.cancel()
            raise GenerationTimeout("engine loop did not answer") from exc

    def generate_sync(self, prompt_ids: list[int], schema: dict, max_tokens: int, timeout_s: float) -> str:
        future = self._submit(prompt_ids, schema, max_tokens, timeout_s)
        try:
            return future.result(timeout=timeout_s + self._SLACK_S)
        except concurrent.futures.TimeoutError as exc:
            future.cancel()
            raise GenerationTimeout("engine loop did not answer") from exc

    def describe(self) -> dict:
        return {
            "state": self.state.value,
            "model": self.model,
            "error": self.error,
            "startup_s": round(self.ready_at - self.started_at, 1) if self.ready_at and self.started_at else None,
        }
