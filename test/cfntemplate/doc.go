// Package cfntemplate reads a synthesized CloudFormation template
// (cdk.out/<stack>.template.json) so the sandbox runs what the stack
// deploys: a typed view of the Lambda functions (asset directory, timeout,
// memory, environment, reserved concurrency, role), the IAM roles and
// policies (inline, AWS::IAM::Policy and attached AWS::IAM::ManagedPolicy
// statements), the DynamoDB tables, and raw access to every other resource
// (schedules, rules) for typed views in other files of this package.
//
// Values in the template that are intrinsic functions (Ref, Fn::GetAtt,
// Fn::Sub, Fn::Join, Fn::Select, Fn::Split) are resolved by a Resolver
// from values the caller supplies: the sandbox maps logical ids to its own
// table names, ARNs and endpoints. Synth produces a template from a groups
// file the way `cdk synth` does (`go run ./infra` with CDK_OUTDIR).
package cfntemplate
