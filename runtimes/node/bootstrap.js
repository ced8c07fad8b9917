// Lambda Runtime API loop for nodejs* functions, Node.js built-ins only.
//
// Loads the handler named by _HANDLER ("file.function", the file may be a
// path like "dir/file") from LAMBDA_TASK_ROOT: file.js (CommonJS, or an ES
// module when the package says so), file.mjs or file.cjs. The handler may be
// async, return a promise, or take a callback as its third argument. Error
// documents follow the shapes the AWS Node.js runtime produces.
//
// As in AWS's Node.js runtime, the global awslambda gives
// streamifyResponse(handler) and HttpResponseStream.from(stream, metadata)
// (unless AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA is set): a streaming
// handler is called as handler(event, responseStream, context) and what it
// writes goes out through the Runtime API's streaming mode as it is written
// (a chunked POST with Lambda-Runtime-Function-Response-Mode: streaming; an
// error midway in the Lambda-Runtime-Function-Error-Type and -Body
// trailers).
'use strict';

const http = require('http');
const fs = require('fs');
const path = require('path');
const util = require('util');
const { pathToFileURL } = require('url');

const API = '/2018-06-01/runtime';
const address = process.env.AWS_LAMBDA_RUNTIME_API || '';
const sep = address.lastIndexOf(':');
const host = address.slice(0, sep);
const port = Number(address.slice(sep + 1));
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function request(method, p, body, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, method, path: API + p, agent, headers: headers || {} }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function post(p, body, errorType) {
  const headers = { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) };
  if (errorType) headers['Lambda-Runtime-Function-Error-Type'] = errorType;
  const res = await request('POST', p, body, headers);
  if (res.status !== 202) {
    process.stderr.write(`runtime API answered ${res.status} to POST ${p}: ${res.body}\n`);
    process.exit(1);
  }
}

function errorDoc(err) {
  if (err instanceof Error) {
    return {
      errorType: err.name || 'Error',
      errorMessage: err.message,
      trace: String(err.stack || '').split('\n'),
    };
  }
  return { errorType: typeof err, errorMessage: String(err), trace: [] };
}

function namedError(name, message) {
  const e = new Error(message);
  e.name = name;
  return e;
}

// Response streaming, as AWS's Node.js runtime offers it.
const HANDLER_STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');
const HANDLER_HIGHWATERMARK = Symbol.for('aws.lambda.runtime.handler.streaming.highWaterMark');
const STREAM_RESPONSE = 'response';
const TRAILER_ERROR_TYPE = 'Lambda-Runtime-Function-Error-Type';
const TRAILER_ERROR_BODY = 'Lambda-Runtime-Function-Error-Body';
const HTTP_INTEGRATION_TYPE = 'application/vnd.awslambda.http-integration-response';

// HttpResponseStream.from makes a stream an HTTP response of a function
// URL: its metadata (statusCode, headers, cookies) as JSON, then 8 NUL
// bytes, go out before the first write.
class HttpResponseStream {
  static from(underlyingStream, prelude) {
    underlyingStream.setContentType(HTTP_INTEGRATION_TYPE);
    const metadata = JSON.stringify(prelude);
    underlyingStream._onBeforeFirstWrite = (write) => {
      write(metadata);
      write(new Uint8Array(8));
    };
    return underlyingStream;
  }
}

const noGlobal = ['1', 'true'].includes(process.env.AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA);
if (!noGlobal) {
  globalThis.awslambda = {
    streamifyResponse: (handler, options) => {
      handler[HANDLER_STREAMING] = STREAM_RESPONSE;
      if (options && typeof options.highWaterMark === 'number') {
        handler[HANDLER_HIGHWATERMARK] = parseInt(options.highWaterMark, 10);
      }
      return handler;
    },
    HttpResponseStream,
  };
}

// responseStream is the stream a streaming handler writes its response to:
// the POST of the response itself, chunked, sent as it is written. done
// settles when the Runtime API has answered it (or the request failed).
function responseStream(requestId) {
  let written = false;
  const req = http.request({
    host, port, method: 'POST', agent,
    path: `${API}/invocation/${encodeURIComponent(requestId)}/response`,
    headers: {
      'Lambda-Runtime-Function-Response-Mode': 'streaming',
      'Transfer-Encoding': 'chunked',
      Trailer: `${TRAILER_ERROR_TYPE}, ${TRAILER_ERROR_BODY}`,
      'Content-Type': 'application/octet-stream',
    },
  });
  const done = new Promise((resolve) => {
    req.on('response', (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
      res.on('error', (error) => resolve({ error }));
    });
    req.on('error', (error) => resolve({ error }));
  });
  req.setContentType = (contentType) => {
    if (written) {
      throw namedError('Runtime.InvalidStreamingOperation', 'Cannot set content-type, too late.');
    }
    req.setHeader('Content-Type', contentType);
  };
  const write = req.write.bind(req);
  req.write = function (chunk, encoding, callback) {
    if (typeof chunk !== 'string' && !Buffer.isBuffer(chunk) && !(chunk instanceof Uint8Array)) {
      chunk = JSON.stringify(chunk);
    }
    if (!written && typeof this._onBeforeFirstWrite === 'function') {
      this._onBeforeFirstWrite((c) => write(c));
    }
    written = true;
    return write(chunk, encoding, callback);
  };
  return { stream: req, done };
}

// invokeStreaming runs a streaming handler: what it writes is the response;
// a throw or a rejection ends the response with the error in the trailers.
// As on AWS, the invocation ends when the stream has ended (a handler that
// returns without ending it runs into its timeout).
async function invokeStreaming(fn, event, context, requestId) {
  const { stream, done } = responseStream(requestId);
  const fail = (err) => {
    const doc = errorDoc(err);
    console.error(`Invoke Error \t${JSON.stringify(doc)}`);
    if (stream.writableEnded || stream.destroyed) return;
    stream.addTrailers({
      [TRAILER_ERROR_TYPE]: doc.errorType,
      [TRAILER_ERROR_BODY]: Buffer.from(JSON.stringify(doc)).toString('base64'),
    });
    stream.end();
  };
  try {
    const ret = fn(event, stream, context);
    if (!ret || typeof ret.then !== 'function') {
      fail('Streaming does not support non-async handlers.');
    } else if ((await ret) !== undefined) {
      console.warn('Streaming handlers ignore return values.');
    }
  } catch (e) {
    fail(e === undefined || e === null ? new Error(String(e)) : e);
  }
  const res = await done;
  if (res.error) {
    process.stderr.write(`the streamed response to the runtime API failed: ${res.error.message}\n`);
  } else if (res.status !== 202) {
    process.stderr.write(`runtime API answered ${res.status} to the streamed response: ${res.body}\n`);
  }
}

// Console output carries the timestamp, request id and level, as on AWS.
let currentRequestId = 'undefined';
for (const [method, level] of [['log', 'INFO'], ['info', 'INFO'], ['warn', 'WARN'], ['error', 'ERROR'], ['debug', 'DEBUG'], ['trace', 'TRACE']]) {
  console[method] = (...args) => {
    const line = `${new Date().toISOString()}\t${currentRequestId}\t${level}\t${util.format(...args)}`;
    process.stdout.write(line.replace(/\n/g, '\r') + '\n');
  };
}

async function loadHandler(spec) {
  const root = process.env.LAMBDA_TASK_ROOT || process.cwd();
  const slash = spec.lastIndexOf('/');
  const dot = spec.indexOf('.', slash + 1);
  if (dot < 0) {
    throw namedError('Runtime.MalformedHandlerName', `Bad handler ${spec}`);
  }
  const modulePath = spec.slice(0, dot);
  const names = spec.slice(dot + 1).split('.');
  const base = path.resolve(root, modulePath);
  const file = ['.js', '.mjs', '.cjs'].map((ext) => base + ext).find((f) => fs.existsSync(f));
  if (!file) {
    throw namedError('Runtime.ImportModuleError', `Error: Cannot find module '${modulePath}'\nRequire stack:\n- ${__filename}`);
  }
  let mod;
  try {
    if (file.endsWith('.mjs')) {
      mod = await import(pathToFileURL(file).href);
    } else {
      try {
        mod = require(file);
      } catch (e) {
        if (e && e.code === 'ERR_REQUIRE_ESM') {
          mod = await import(pathToFileURL(file).href);
        } else {
          throw e;
        }
      }
    }
  } catch (e) {
    if (e instanceof SyntaxError) {
      throw namedError('Runtime.UserCodeSyntaxError', `${e.name}: ${e.message}`);
    }
    if (e && e.code === 'MODULE_NOT_FOUND') {
      throw namedError('Runtime.ImportModuleError', `Error: ${e.message}`);
    }
    throw e;
  }
  let fn = mod;
  for (const n of names) {
    fn = fn == null ? undefined : fn[n];
  }
  if (fn === undefined && mod && mod.default) {
    fn = mod.default;
    for (const n of names) {
      fn = fn == null ? undefined : fn[n];
    }
  }
  if (typeof fn !== 'function') {
    throw namedError('Runtime.HandlerNotFound', `${path.basename(modulePath)}.${names.join('.')} is undefined or not exported`);
  }
  return fn;
}

function callHandler(fn, event, context) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const done = (err, result) => {
      if (settled) return;
      settled = true;
      if (err !== undefined && err !== null) reject(err);
      else resolve(result);
    };
    context.done = done;
    context.succeed = (result) => done(null, result);
    context.fail = (err) => done(err || new Error('handled'));
    try {
      const ret = fn(event, context, done);
      if (ret && typeof ret.then === 'function') {
        ret.then((r) => done(null, r), (e) => done(e === undefined || e === null ? new Error(String(e)) : e));
      } else if (fn.length < 3) {
        done(null, ret);
      }
    } catch (e) {
      done(e);
    }
  });
}

async function main() {
  let fn;
  try {
    fn = await loadHandler(process.env._HANDLER || '');
  } catch (e) {
    const doc = errorDoc(e);
    process.stderr.write(`${new Date().toISOString()}\tundefined\tERROR\t${JSON.stringify(doc)}\n`);
    await post('/init/error', JSON.stringify(doc), doc.errorType);
    process.exit(1);
  }
  for (;;) {
    const next = await request('GET', '/invocation/next');
    if (next.status !== 200) {
      process.stderr.write(`runtime API answered ${next.status} to GET /next\n`);
      process.exit(1);
    }
    const h = next.headers;
    const requestId = h['lambda-runtime-aws-request-id'] || '';
    const deadline = Number(h['lambda-runtime-deadline-ms'] || 0);
    currentRequestId = requestId;
    if (h['lambda-runtime-trace-id']) process.env._X_AMZN_TRACE_ID = h['lambda-runtime-trace-id'];
    else delete process.env._X_AMZN_TRACE_ID;
    let event;
    const context = {
      callbackWaitsForEmptyEventLoop: true,
      functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
      functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
      invokedFunctionArn: h['lambda-runtime-invoked-function-arn'],
      memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
      awsRequestId: requestId,
      logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
      logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
      getRemainingTimeInMillis: () => Math.max(deadline - Date.now(), 0),
    };
    // The tenant of a function with tenant isolation; absent otherwise.
    if (h['lambda-runtime-aws-tenant-id']) context.tenantId = h['lambda-runtime-aws-tenant-id'];
    try {
      event = next.body.length ? JSON.parse(next.body.toString('utf8')) : null;
      if (h['lambda-runtime-client-context']) context.clientContext = JSON.parse(h['lambda-runtime-client-context']);
      if (h['lambda-runtime-cognito-identity']) context.identity = JSON.parse(h['lambda-runtime-cognito-identity']);
    } catch (e) {
      const doc = errorDoc(namedError('Runtime.UnmarshalError', `Unable to parse input as JSON: ${e.message}`));
      await post(`/invocation/${requestId}/error`, JSON.stringify(doc), doc.errorType);
      continue;
    }
    if (fn[HANDLER_STREAMING] === STREAM_RESPONSE) {
      await invokeStreaming(fn, event, context, requestId);
      continue;
    }
    let result;
    try {
      result = await callHandler(fn, event, context);
    } catch (e) {
      const doc = errorDoc(e);
      console.error(`Invoke Error \t${JSON.stringify(doc)}`);
      await post(`/invocation/${requestId}/error`, JSON.stringify(doc), doc.errorType);
      continue;
    }
    let body;
    try {
      body = JSON.stringify(result === undefined ? null : result);
    } catch (e) {
      const doc = errorDoc(namedError('Runtime.MarshalError', `Unable to stringify response body as json: ${e.message}`));
      await post(`/invocation/${requestId}/error`, JSON.stringify(doc), doc.errorType);
      continue;
    }
    await post(`/invocation/${requestId}/response`, body);
  }
}

main().catch((e) => {
  process.stderr.write(`runtime failure: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
