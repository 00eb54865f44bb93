package rights

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/sio-pso/siobroker"
)

// The JSON form of the tables, for integration engineers and other systems that mirror the rules.
// Only the two appendices are exported; the truncation fields and the article list stay in the
// YAML, which is the reviewed source.
type exportFile struct {
	Roles    []exportRole    `json:"roles"`
	Services []exportService `json:"services"`
	// The edition of Appendix 1 the role numbers refer to: a mirror that kept numbers without it
	// would read them in whichever wording it knows.
	Edition     string `json:"edition"`
	EditionDate string `json:"edition_date"`
}

type exportRole struct {
	No    int    `json:"no"`
	Name  string `json:"name"`
	Bases []int  `json:"bases"`
}

type exportService struct {
	No   int    `json:"no"`
	Name string `json:"name"`
	// Keys are the basis numbers as strings; encoding/json sorts them, and "1".."6" sort as
	// numbers do. A basis under which the service is not available has no key.
	Access map[string]siobroker.Access `json:"access"`
}

// ExportJSON writes both appendices as
//
//	{"roles":[{"no":1,"name":"Прокурор","bases":[1,2,3,4,5,6]},...],
//	 "services":[{"no":1,"name":"...","access":{"1":"full",...}},...]}
//
// indented by two spaces, with Cyrillic and quotes written as text rather than \u escapes where
// JSON allows it.
func (t *Table) ExportJSON(w io.Writer) error {
	out := exportFile{
		Roles:       make([]exportRole, 0, len(t.roles)),
		Services:    make([]exportService, 0, len(t.services)),
		Edition:     t.edition,
		EditionDate: t.editionDate.Format(time.DateOnly),
	}
	for _, r := range t.roles {
		bases := make([]int, 0, len(r.Bases))
		for _, b := range r.Bases {
			bases = append(bases, int(b))
		}
		out.Roles = append(out.Roles, exportRole{No: r.No, Name: r.Name, Bases: bases})
	}
	for _, s := range t.services {
		acc := make(map[string]siobroker.Access, len(s.Access))
		for b, a := range s.Access {
			acc[strconv.Itoa(int(b))] = a
		}
		out.Services = append(out.Services, exportService{No: s.No, Name: s.Name, Access: acc})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	// Names are plain text for people; "<", ">" and "&" need no HTML escaping here.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("rights: export JSON: %w", err)
	}
	return nil
}
