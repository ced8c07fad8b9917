package policy

import (
	"net/netip"
	"testing"
	"time"
)

// FuzzPolicy parses arbitrary documents; any that parses is evaluated as
// an identity and as a resource policy without a panic, and a statement
// set that allows nothing never allows.
func FuzzPolicy(f *testing.F) {
	f.Add([]byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"lambda:*","Resource":"*"}]}`))
	f.Add([]byte(`{"Statement":{"Effect":"Deny","NotAction":["lambda:Get*"],"NotResource":"arn:*","Condition":{"StringLikeIfExists":{"lambda:FunctionArn":["*a?"]},"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}}`))
	f.Add([]byte(`{"Statement":[{"Effect":"Allow","Principal":{"AWS":["123456789012","*"],"Service":"s3.amazonaws.com"},"Action":"*","Condition":{"NumericLessThan":{"aws:EpochTime":1e10},"DateGreaterThan":{"aws:CurrentTime":"2020-01-01"},"Null":{"x":true},"ForAllValues:StringEquals":{"k":["a",1,true]}}}]}`))
	f.Add([]byte(`{"Statement":[{"Effect":"Allow","Action":"lambda:*","Resource":"*"}], "Statement":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse(data)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("not a policy error: %T %v", err, err)
			}
			return
		}
		r := &Request{Action: "lambda:InvokeFunction", Resource: "arn:aws:lambda:us-east-1:123456789012:function:f",
			PrincipalAccount: "123456789012", PrincipalARN: "arn:aws:iam::123456789012:user/u",
			SourceIP: netip.MustParseAddr("10.0.0.1"), Time: time.Unix(1800000000, 0), Keys: map[string]string{"k": "a"}}
		dec := d.Evaluate(r)
		d.EvaluateResource(r, r.Resource)
		allows := false
		for _, st := range d.Statements {
			allows = allows || st.Effect == Allow
		}
		if dec == Allowed && !allows {
			t.Fatal("allowed with no Allow statement")
		}
	})
}
