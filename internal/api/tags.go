package api

type wireTagInput struct {
	Tags    map[string]string
	TagKeys []string
}

func (s *Server) tagResource(c *call) (any, error) {
	var in wireTagInput
	if err := bind(c.in, &in); err != nil {
		return nil, err
	}
	return noContent{}, s.ctl.TagResource(c.ctx(), c.str("Resource"), in.Tags)
}

func (s *Server) untagResource(c *call) (any, error) {
	var in wireTagInput
	if err := bind(c.in, &in); err != nil {
		return nil, err
	}
	return noContent{}, s.ctl.UntagResource(c.ctx(), c.str("Resource"), in.TagKeys)
}

type wireTags struct {
	Tags map[string]string `json:"Tags"`
}

func (s *Server) listTags(c *call) (any, error) {
	tags, err := s.ctl.ListTags(c.ctx(), c.str("Resource"))
	if err != nil {
		return nil, err
	}
	return &wireTags{Tags: tags}, nil
}
