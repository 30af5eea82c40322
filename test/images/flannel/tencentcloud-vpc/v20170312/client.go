// Package v20170312 has the types and calls flannel's tencent-vpc backend uses; every call fails, so
// a flanneld configured with that backend says why instead of changing routes.
package v20170312

import "errors"

var errUnavailable = errors.New("the tencent-vpc backend is not built into this flanneld (k8s-on-k8s test image)")

type Filter struct {
	Name   *string
	Values []*string
}

type Route struct {
	DestinationCidrBlock *string
	GatewayType          *string
	GatewayId            *string
	RouteId              *uint64
	RouteType            *string
	Enabled              *bool
}

type RouteTable struct {
	RouteTableId *string
	RouteSet     []*Route
}

type DescribeRouteTablesRequest struct{ Filters []*Filter }

type DescribeRouteTablesResponse struct {
	Response *struct{ RouteTableSet []*RouteTable }
}

type DeleteRoutesRequest struct {
	RouteTableId *string
	Routes       []*Route
}

type CreateRoutesRequest struct {
	RouteTableId *string
	Routes       []*Route
}

type Client struct{}

func NewClientWithSecretId(secretId, secretKey, region string) (*Client, error) {
	return &Client{}, nil
}

func NewDescribeRouteTablesRequest() *DescribeRouteTablesRequest {
	return &DescribeRouteTablesRequest{}
}
func NewDeleteRoutesRequest() *DeleteRoutesRequest { return &DeleteRoutesRequest{} }
func NewCreateRoutesRequest() *CreateRoutesRequest { return &CreateRoutesRequest{} }

func (*Client) DescribeRouteTables(*DescribeRouteTablesRequest) (*DescribeRouteTablesResponse, error) {
	return nil, errUnavailable
}

func (*Client) DeleteRoutes(*DeleteRoutesRequest) (struct{}, error) {
	return struct{}{}, errUnavailable
}

func (*Client) CreateRoutes(*CreateRoutesRequest) (struct{}, error) {
	return struct{}{}, errUnavailable
}
