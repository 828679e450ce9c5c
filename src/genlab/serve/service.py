"""The service core every adapter (FastAPI, Flask, SageMaker, Vertex AI, Azure ML) calls.

It holds the loaded models, validates requests, runs sampling (answered as JSON, or for one
audio sample asked for with `Accept: audio/wav` as the WAV file itself) and image-to-image
translation
(an uploaded image in, a PNG out: genlab.serve.uploads reads the form) through one
micro-batcher per model and text generation in the caller's thread, checks the API key, and
counts what happens for Prometheus. It knows nothing of HTTP frameworks: a problem is a
`ServeError` with a status (always 4xx for a bad request or a limit) and a one-line message;
the adapters turn it into `{"error": message}`. Anything else a route raises is a bug:
`Service.problem` logs its traceback and makes it a one-line 500, which the adapters count in
the metrics like every other answer.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import torch
from pydantic import ValidationError

from genlab.contract import LatentSampler, translate_keywords
from genlab.errors import GenlabError
from genlab.serve.batching import Job, MicroBatcher
from genlab.serve.encoders import ENCODERS, WAV, WAV_FORMAT, encode_samples, wav_file
from genlab.serve.schemas import Limits, SampleRequest, TextRequest, describe, sample_request
from genlab.serve.store import Served, load_served, sample_conditions

DEFAULT_TOKENS = 100  # new tokens when a text request does not say
log = logging.getLogger("genlab.serve")


class ServeError(Exception):
    """A request the service refuses: an HTTP status and a one-line message. `close`: the
    connection must close after the answer (the rest of the request body was never read)."""

    def __init__(self, status: int, message: str, *, close: bool = False):
        super().__init__(message)
        self.status, self.message, self.close = status, message, close

    def headers(self) -> dict[str, str]:
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else {}
        if self.close:
            headers["Connection"] = "close"
        return headers


class Metrics:
    """Prometheus counters and histograms in a registry of this service's own."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter(
            "genlab_requests", "HTTP requests", ["route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "genlab_request_latency_seconds",
            "request latency",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.batch = Histogram(
            "genlab_batch_size",
            "samples per forward pass",
            ["model"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=self.registry,
        )
        self.tokens = Counter(
            "genlab_generated_tokens", "tokens generated", ["model"], registry=self.registry
        )
        self.models = Gauge("genlab_models_loaded", "models loaded", registry=self.registry)

    def observe(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route=route, status=str(status)).inc()
        self.latency.labels(route=route).observe(seconds)

    def text(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


@dataclass
class PendingSample:
    served: Served
    request: SampleRequest
    seed: int
    start: float
    future: Future


@dataclass
class Translation:
    """An image-to-image request, checked and decoded: the model's batcher runs it alone."""

    served: Served
    images: dict[str, torch.Tensor]  # by input name ("image", "style"): (3, H, W) in [0, 1]
    keywords: dict[str, Any]  # the translate options, checked


@dataclass
class PendingTranslation:
    served: Served
    start: float
    future: Future  # the output (C, H', W') on the CPU


class Service:
    def __init__(
        self,
        specs: Sequence[str] = (),
        *,
        limits: Limits | None = None,
        api_key: str | None = None,
        device: str = "cpu",
    ):
        self.limits = limits or Limits()
        try:
            self.limits.validate()
        except ValueError as e:
            raise GenlabError(str(e)) from None
        if api_key is not None and not api_key:
            raise GenlabError("the API key is empty")
        self.api_key = api_key
        self.metrics = Metrics()
        self.models: dict[str, dict[str, Served]] = {}  # name -> version -> model (in order)
        self._batchers: dict[tuple[str, str], MicroBatcher] = {}
        self._ready = threading.Event()
        for spec in specs:
            self.add(load_served(spec, device=device))
        if specs:
            self.mark_ready()

    # --- models --------------------------------------------------------------------------------
    def add(self, served: Served) -> None:
        versions = self.models.setdefault(served.name, {})
        if served.version in versions:
            raise GenlabError(f"model {served.name} version {served.version} is loaded twice")
        versions[served.version] = served
        if not served.answers_text:
            self._batchers[(served.name, served.version)] = MicroBatcher(
                lambda jobs, s=served: self._run_jobs(s, jobs),
                max_batch=self.limits.max_batch,
                max_wait_ms=self.limits.max_wait_ms,
                name=served.name,
                on_batch=lambda n, s=served: self.metrics.batch.labels(model=s.name).observe(n),
            )
        self.metrics.models.set(sum(len(v) for v in self.models.values()))

    def mark_ready(self) -> None:
        self._ready.set()

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def close(self) -> None:
        for batcher in self._batchers.values():
            batcher.close()

    def describe(self) -> dict[str, Any]:
        return {"models": [s.describe() for v in self.models.values() for s in v.values()]}

    def find(self, name: str | None, version: str | None = None) -> Served:
        """The model called `name` (the one loaded last when no version is given); with no
        name, the only model (a cloud contract with one model)."""
        if name is None:
            if len(self.models) != 1:
                known = ", ".join(self.models) or "none"
                raise ServeError(400, f'say which model ("model": one of {known})')
            name = next(iter(self.models))
        versions = self.models.get(name)
        if versions is None:
            known = ", ".join(self.models) or "none"
            raise ServeError(404, f"no model named {name!r} (loaded: {known})")
        if version is None:
            return list(versions.values())[-1]
        if version not in versions:
            raise ServeError(
                404, f"model {name} has no version {version!r} (versions: {', '.join(versions)})"
            )
        return versions[version]

    def problem(self, error: Exception) -> ServeError:
        """What a route answers for `error`: a ServeError as it is; anything else is a bug,
        logged with its traceback and answered as a one-line 500."""
        if isinstance(error, ServeError):
            return error
        log.error("unexpected error while serving a request", exc_info=error)
        return ServeError(
            500, f"internal server error ({type(error).__name__}); the server's log has details"
        )

    # --- request checks ------------------------------------------------------------------------
    def authorize(self, header: str | None) -> None:
        """401 unless the Authorization header carries the key (when one is set)."""
        if self.api_key is None:
            return
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ServeError(401, "missing API key: send the header 'Authorization: Bearer KEY'")
        if not hmac.compare_digest(token.strip().encode(), self.api_key.encode()):
            raise ServeError(401, "wrong API key")

    def check_length(self, length: int | None) -> None:
        if length is not None and length > self.limits.max_body_bytes:
            raise ServeError(
                413,
                f"request body of {length} bytes is over the {self.limits.max_body_bytes}"
                " byte limit",
            )

    def body_timeout(self) -> ServeError:
        """408 for a body that stopped arriving: the reader gave up, so the connection closes."""
        return ServeError(
            408,
            f"the request body did not arrive within the {self.limits.timeout_s:g} s limit",
            close=True,
        )

    def parse_body(self, body: bytes) -> dict[str, Any]:
        """A JSON object from the body; 413 / 400 otherwise (an empty body too: the OpenAPI
        spec marks the body required, and `{}` asks for every default)."""
        self.check_length(len(body))
        if not body.strip():
            raise ServeError(400, "the body is empty: send a JSON object ({} for the defaults)")
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ServeError(400, f"the body is not valid JSON ({e})") from None
        except RecursionError:  # json's C decoder gives up near the interpreter's stack limit
            raise ServeError(400, "the body's JSON is nested too deeply") from None
        if not isinstance(payload, dict):
            raise ServeError(400, f"the body must be a JSON object, got {type(payload).__name__}")
        return payload

    def validate(self, served: Served, payload: dict[str, Any]) -> SampleRequest | TextRequest:
        """The request `payload` makes for this model (a text model takes a TextRequest, any
        other a SampleRequest), within the server's limits; 422 otherwise."""
        schema = TextRequest if served.answers_text else sample_request()
        try:
            request = schema.model_validate(payload)
        except ValidationError as e:
            raise ServeError(422, describe(e)) from None
        if isinstance(request, SampleRequest):
            self._check_samples(served, request)
        else:
            self._check_text(request)
        return request

    def _check_samples(self, served: Served, request: SampleRequest) -> None:
        if request.n > self.limits.max_n:
            raise ServeError(422, f"n: at most {self.limits.max_n} samples per request")
        if request.format not in served.formats:
            makes = served.makes
            formats = " or ".join(served.formats)
            encoder = ENCODERS[request.format]
            raise ServeError(
                422, f"format: {served.name} makes {makes}, not {encoder.makes}: {formats}"
            )

    def _check_text(self, request: TextRequest) -> None:
        limits = self.limits
        if request.max_new_tokens is None:
            request.max_new_tokens = min(DEFAULT_TOKENS, limits.max_tokens)
        if request.max_new_tokens > limits.max_tokens:
            raise ServeError(422, f"max_new_tokens: at most {limits.max_tokens}")
        if len(request.prompt) > limits.max_prompt_chars:
            raise ServeError(422, f"prompt: at most {limits.max_prompt_chars} characters")

    # --- the work ------------------------------------------------------------------------------
    def run(self, name: str | None, version: str | None, payload: dict[str, Any]) -> dict:
        """One request that answers with one JSON object (images, arrays or whole text)."""
        served = self.find(name, version)
        request = self.validate(served, payload)
        if isinstance(request, TextRequest):
            if request.stream:
                raise ServeError(422, "stream: this route answers with one object; use SSE")
            return self._complete(served, request)
        return self._sample(served, request)

    def _sample(self, served: Served, request: SampleRequest) -> dict:
        return self.collect(self.start_sample(served, request))

    def collect(self, pending: PendingSample) -> dict:
        """Wait (at most the time limit) for a queued sampling request and answer it."""
        try:
            samples, batch_size = pending.future.result(timeout=self.limits.timeout_s)
        except Exception as e:
            raise self.sample_error(pending, e) from None
        return self.finish_sample(pending, samples, batch_size)

    def sample_error(
        self, pending: PendingSample | PendingTranslation, error: Exception
    ) -> Exception:
        """What a failed wait for a sampling or translation request answers: 408 past the time
        limit (the request is withdrawn), 422 when the model refused the conditions (e.g. a
        label range, an image it cannot take); anything else is a server error and
        propagates."""
        if isinstance(error, TimeoutError):  # concurrent's and asyncio's are this one
            pending.future.cancel()
            return ServeError(
                408, f"the request took longer than the {self.limits.timeout_s:g} s limit"
            )
        if isinstance(error, ValueError):
            return ServeError(422, str(error))
        return error

    def start_sample(self, served: Served, request: SampleRequest) -> PendingSample:
        """Queue a sampling request on the model's batcher; its future gives (samples, the
        number of samples in the forward pass)."""
        start = time.perf_counter()
        options = request.model_dump(exclude=set(SampleRequest.model_fields))
        try:
            cond = sample_conditions(served, options)
        except ValueError as e:
            raise ServeError(422, str(e)) from None
        seed = request.seed if request.seed is not None else random_seed()
        batcher = self._batchers[(served.name, served.version)]
        key = self._batch_key(served, options, cond)
        future = batcher.submit(request.n, key, (seed, cond))
        return PendingSample(served, request, seed, start, future)

    def finish_sample(self, pending: PendingSample, samples: torch.Tensor, batch_size: int) -> dict:
        served, request = pending.served, pending.request
        out = {
            "model": served.name,
            "version": served.version,
            "kind": served.kind,
            "n": request.n,
            "seed": pending.seed,
            "format": request.format,
            "batch_size": batch_size,
        }
        out.update(encode_samples(samples, request.format, served.sample_info))
        out["latency_ms"] = round((time.perf_counter() - pending.start) * 1000, 3)
        return out

    # --- one sample as a WAV file (Accept: audio/wav) -------------------------------------------
    def run_wav(self, name: str | None, version: str | None, payload: dict[str, Any]):
        """One audio sample as WAV bytes, and the answer's headers (see `wav_request`)."""
        served = self.find(name, version)
        pending = self.start_sample(served, self.wav_request(served, payload))
        try:
            samples, _ = pending.future.result(timeout=self.limits.timeout_s)
        except Exception as e:
            raise self.sample_error(pending, e) from None
        return self.finish_wav(pending, samples)

    def wav_request(self, served: Served, payload: dict[str, Any]) -> SampleRequest:
        """The request of an answer that is a WAV file: 406 for a model whose samples are not
        audio with a sample rate (a text model too); 422 for a format other than wav, for n
        other than 1 (one file holds one sample) and for what any sample request refuses."""
        if WAV_FORMAT not in served.formats:
            raise ServeError(
                406, f"{served.name} makes {served.makes}, not {WAV}: ask for application/json"
            )
        given = payload.get("format", WAV_FORMAT)
        if given != WAV_FORMAT:
            raise ServeError(422, f"format: {given!r} does not go with Accept: {WAV}")
        request = self.validate(served, {**payload, "format": WAV_FORMAT})
        if not isinstance(request, SampleRequest) or request.n != 1:
            raise ServeError(
                422, f'n: an {WAV} answer holds one sample; for more ask for JSON ("format": "wav")'
            )
        return request

    def finish_wav(self, pending: PendingSample, samples: torch.Tensor) -> tuple[bytes, dict]:
        """The WAV file of a one-sample request, and its headers (model, seed, rate, time)."""
        served = pending.served
        info = served.sample_info
        data, _ = wav_file(samples[0], info)
        return data, {
            "X-Genlab-Model": served.name,
            "X-Genlab-Version": served.version,
            "X-Genlab-Seed": str(pending.seed),
            "X-Genlab-Sample-Rate": str(info.sound_rate()),
            "X-Genlab-Latency-Ms": str(round((time.perf_counter() - pending.start) * 1000, 3)),
        }

    @staticmethod
    def _batch_key(served: Served, options: dict[str, Any], cond: dict[str, Any]):
        """Requests with equal keys share a forward pass: a LatentSampler's, with the same
        sample keywords (None: the request runs alone)."""
        if not isinstance(served.model, LatentSampler):
            return None
        if served.class_option is not None and options.get(served.class_option) is None:
            return None  # default labels depend on the row: not row by row
        return tuple(sorted(cond.items()))

    def _run_jobs(self, served: Served, jobs: Sequence[Job]) -> list[Any]:
        """Runs on the model's batcher thread: a translation (always alone: key None), else
        one forward pass of samples for all `jobs`."""
        if isinstance(jobs[0].payload, Translation):
            return [self._translate(jobs[0].payload)]
        return self._sample_batch(served, jobs)

    def _sample_batch(self, served: Served, jobs: Sequence[Job]) -> list[tuple[Any, int]]:
        """Runs on the model's batcher thread: one forward pass for all `jobs`."""
        model = served.model
        device = next(model.parameters()).device
        total = sum(job.size for job in jobs)
        with torch.inference_mode():
            if len(jobs) == 1 and jobs[0].key is None:
                seed, cond = jobs[0].payload
                generator = torch.Generator(device=device).manual_seed(seed)
                parts = [model.sample(jobs[0].size, generator=generator, **cond)]
            else:
                cond = jobs[0].payload[1]
                latents = [
                    model.sample_latent(
                        job.size,
                        generator=torch.Generator(device=device).manual_seed(job.payload[0]),
                    )
                    for job in jobs
                ]
                out = model.decode_latent(torch.cat(latents), **cond)
                parts = list(out.split([job.size for job in jobs]))
        return [(part.float().cpu(), total) for part in parts]

    # --- image to image ------------------------------------------------------------------------
    def translate(
        self, name: str, version: str | None, content_type: str | None, body: bytes
    ) -> tuple[bytes, dict[str, str]]:
        """One image-to-image request (the multipart form in `body`) -> (PNG bytes, headers)."""
        pending = self.start_translate(name, version, content_type, body)
        try:
            output = pending.future.result(timeout=self.limits.timeout_s)
        except Exception as e:
            raise self.sample_error(pending, e) from None
        return self.finish_translate(pending, output)

    def start_translate(
        self, name: str, version: str | None, content_type: str | None, body: bytes
    ) -> PendingTranslation:
        """Check an image-to-image request (a contract.Translator, the form's fields, option
        values, each image's size and format: see genlab.serve.uploads), decode its images
        and queue it on the model's batcher; its future gives the output (C, H', W')."""
        from genlab.serve import uploads

        start = time.perf_counter()
        served = self.find(name, version)
        if not served.translates:
            raise ServeError(
                404,
                f"{served.name} does not translate images (a {type(served.model).__name__}: "
                f"POST /v1/models/{served.name}/generate for its samples)",
            )
        self.check_length(len(body))
        files, fields = uploads.read_form(content_type, body)
        offered = [option["name"] for option in served.translate_options]
        uploads.check_fields(served.name, served.inputs, offered, files, fields)
        try:  # the fields are the served options (checked above): now their values
            keywords = translate_keywords(served.model, fields)
        except ValueError as e:
            raise ServeError(422, str(e)) from None
        images = {
            field: uploads.decode_image(field, files[field], self.limits.max_pixels)
            for field in served.inputs
        }
        batcher = self._batchers[(served.name, served.version)]
        future = batcher.submit(1, None, Translation(served, images, keywords))
        return PendingTranslation(served, start, future)

    def _translate(self, translation: Translation) -> torch.Tensor:
        """Runs on the model's batcher thread: translate(image, other inputs..., options) for
        a batch of one; the output (C, H', W') on the CPU."""
        model = translation.served.model
        first, *others = translation.served.inputs  # the contract: "image" comes first
        weight = next(model.parameters(), None)
        device = weight.device if weight is not None else torch.device("cpu")
        images = {name: image[None].to(device) for name, image in translation.images.items()}
        with torch.inference_mode():
            out = model.translate(
                images[first], **{name: images[name] for name in others}, **translation.keywords
            )
        return out[0].float().cpu()

    def finish_translate(
        self, pending: PendingTranslation, output: torch.Tensor
    ) -> tuple[bytes, dict[str, str]]:
        """The PNG of a translation's output, and the answer's headers (the time it took)."""
        from genlab.serve.uploads import encode_png

        png = encode_png(output)
        latency = round((time.perf_counter() - pending.start) * 1000, 3)
        served = pending.served
        return png, {
            "X-Genlab-Model": served.name,
            "X-Genlab-Version": served.version,
            "X-Genlab-Latency-Ms": str(latency),
        }

    def _complete(self, served: Served, request: TextRequest) -> dict:
        start = time.perf_counter()
        seed, pieces = self._text_stream(served, request)
        text = "".join(pieces)
        return {
            "model": served.name,
            "version": served.version,
            "kind": served.kind,
            "seed": seed,
            "text": text,
            "latency_ms": round((time.perf_counter() - start) * 1000, 3),
        }

    def stream(self, name: str | None, version: str | None, payload: dict[str, Any]):
        """The server-sent-event strings of a text request, as an iterator; errors in the
        request are raised before the first event."""
        served = self.find(name, version)
        request = self.validate(served, payload)
        if not isinstance(request, TextRequest):
            raise ServeError(422, f"{served.name} is not a language model: nothing to stream")
        start = time.perf_counter()
        seed, pieces = self._text_stream(served, request)

        def events() -> Iterator[str]:
            try:
                for piece in pieces:
                    yield sse("token", {"text": piece})
            except Exception as e:  # the status (200) is sent: the error goes in the stream
                yield sse("error", {"error": self.problem(e).message})
                return
            latency = round((time.perf_counter() - start) * 1000, 3)
            yield sse("done", {"seed": seed, "latency_ms": latency})

        return events()

    def _text_stream(self, served: Served, request: TextRequest) -> tuple[int, Iterator[str]]:
        from genlab.generation import GenerationConfig, generate_text

        seed = request.seed if request.seed is not None else random_seed()
        config = GenerationConfig(
            max_new_tokens=request.max_new_tokens,
            temperature=request.temperature,
            top_k=request.top_k,
            top_p=request.top_p,
            repetition_penalty=request.repetition_penalty,
            stop=tuple(request.stop),
            seed=seed,
        )
        try:
            pieces = generate_text(served.model, served.model.tokenizer, request.prompt, config)
        except GenlabError as e:  # e.g. characters outside a char vocabulary
            raise ServeError(422, f"prompt: {e}") from None
        deadline = time.monotonic() + self.limits.timeout_s
        counter = self.metrics.tokens.labels(model=served.name)

        def timed() -> Iterator[str]:
            for piece in pieces:
                counter.inc()
                yield piece
                if time.monotonic() > deadline:
                    raise ServeError(
                        408, f"generation took longer than the {self.limits.timeout_s:g} s limit"
                    )

        return seed, timed()


WAV_TYPES = (WAV, "audio/x-wav", "audio/wave", "audio/vnd.wave")  # names of WAV in use


def wants_wav(accept: str | None) -> bool:
    """Whether an Accept header asks for a WAV file rather than JSON: it names WAV (any of
    WAV_TYPES) with a q above 0 and at least application/json's. No header, `*/*` or JSON
    alone: JSON, as always."""
    best = {"wav": 0.0, "json": 0.0}
    for part in (accept or "").split(","):
        media, *parameters = (piece.strip().lower() for piece in part.split(";"))
        quality = 1.0
        for parameter in parameters:
            key, _, value = parameter.partition("=")
            if key.strip() == "q":
                try:
                    quality = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    quality = 0.0
                quality = quality if quality == quality else 0.0  # q=nan
        kind = "wav" if media in WAV_TYPES else "json" if media == "application/json" else None
        if kind is not None:
            best[kind] = max(best[kind], quality)
    return best["wav"] > 0 and best["wav"] >= best["json"]


def random_seed() -> int:
    """A fresh seed below 2**53, so that JavaScript clients read it back exactly."""
    return secrets.randbits(53)


def sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"
