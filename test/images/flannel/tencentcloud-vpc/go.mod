// A stand-in for the Tencent Cloud VPC SDK, which the module proxy here refuses: flanneld links its
// tencent-vpc backend unconditionally, and the images use the vxlan backend only.
module github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc

go 1.26.0
