// Package soap is the wire form of the broker's endpoint: the e-government gateway's SyncChannel v10
// SendMessage, SOAP 1.1 document/literal, carrying one q:query (urn:kz:sio-pso:broker:v1) in
// requestData/data and one q:result in responseData/data.
//
// It reads untrusted envelopes defensively (ReadEnvelope: size, encoding, DOCTYPE, processing
// instructions, depth and element count are checked as the tree is built, each token before it
// joins the tree), validates the parts against the published XSDs by hand (ParseRequestInfo,
// ParseQuery, ParseResponse), builds unsigned envelopes (NewRequest, NewResponse) for the signing package to sign, and is the one
// place where an error becomes a SOAP fault (WriteFault). It knows nothing about signatures: the
// caller verifies one and hands back the element it covers.
//
// Every refusal is a *siobroker.Error; schema errors are siobroker.FieldError values whose Field
// is the XML path of the offending field, for example "query/subject/iin".
package soap
