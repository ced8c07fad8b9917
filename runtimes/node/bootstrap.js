// Lambda Runtime API loop for nodejs* functions, Node.js built-ins only.
//
// Loads the handler named by _HANDLER ("file.function", the file may be a
// path like "dir/file") from LAMBDA_TASK_ROOT: file.js (CommonJS, or an ES
// module when the package says so), file.mjs or file.cjs. The handler may be
// async, return a promise, or take a callback as its third argument. Error
// documents follow the shapes the AWS Node.js runtime produces.
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
    try {
      event = next.body.length ? JSON.parse(next.body.toString('utf8')) : null;
      if (h['lambda-runtime-client-context']) context.clientContext = JSON.parse(h['lambda-runtime-client-context']);
      if (h['lambda-runtime-cognito-identity']) context.identity = JSON.parse(h['lambda-runtime-cognito-identity']);
    } catch (e) {
      const doc = errorDoc(namedError('Runtime.UnmarshalError', `Unable to parse input as JSON: ${e.message}`));
      await post(`/invocation/${requestId}/error`, JSON.stringify(doc), doc.errorType);
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
