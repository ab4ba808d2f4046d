package export

func (r *renderer) systemdRunner() []File    { panic("TODO") }
func (r *renderer) kubernetesRunner() []File { panic("TODO") }
func (r *renderer) nomadRunner() []File      { panic("TODO") }
